//! `#[daemon(commands = true)]`: `fx_commands [start|stop|status|restart|reload] ARGS...`. The daemon
//! reports `PID args=A|B|...` (`daemon_runtime::control::args()` after the program name) to `$FIXTURE_OUT` and
//! stays; SIGTERM's default action ends it. The pid file's path is fixed by the attribute, so only one test
//! uses this fixture.
use daemon_runtime::daemon;

#[daemon(
    pid_file = "/tmp/daemon-rt-fx-commands.pid",
    commands = true,
    stop_retry = "TERM/10/KILL/5"
)]
fn main() {
    let args: Vec<String> = daemon_runtime::control::args().skip(1).collect();
    tests::report(&format!("{} args={}\n", std::process::id(), args.join("|")));
    tests::linger();
}
