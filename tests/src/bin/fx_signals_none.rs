//! Handles no signal at all: for the PID 1 rule (SIGTERM and SIGINT must still end it). Pid file
//! `fx_signals_none.pid` in the launcher's directory; reports its pid, then lingers.
use daemon_runtime::daemon;

#[daemon(pid_file = "fx_signals_none.pid")]
fn main() {
    tests::report_pid_and_wait();
}
