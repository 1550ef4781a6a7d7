//! Handles no signal at all, for the PID 1 rule (SIGTERM and SIGINT must still end it). Pid file
//! `fx_signals_none.pid` in the launcher's directory. Reports its pid, then lingers; with
//! `FIXTURE_MODE=orphan` it first runs `sh -c 'sleep 2 &'` and waits for that shell itself (the sleep,
//! orphaned, goes to PID 1), reporting `PID orphan=SLEEP_PID` once its own wait succeeded.
use std::process::Command;

use daemon_runtime::Daemon;

fn main() {
    let daemon = Daemon::new().pid_file(tests::launch_dir_file("fx_signals_none.pid"));
    let _running = tests::start_or_exit(daemon, "fx_signals_none");
    let pid = std::process::id();
    if std::env::var("FIXTURE_MODE").as_deref() == Ok("orphan") {
        let output = Command::new("sh")
            .args(["-c", "sleep 2 >/dev/null 2>&1 & echo $!"])
            .output();
        match output {
            Ok(output) if output.status.success() => {
                let orphan = String::from_utf8_lossy(&output.stdout).trim().to_string();
                tests::report(&format!("{pid} orphan={orphan}\n"));
            }
            other => tests::report(&format!("{pid} own wait failed: {other:?}\n")),
        }
        tests::linger();
    } else {
        tests::report_pid_and_wait();
    }
}
