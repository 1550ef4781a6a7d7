//! Manual readiness, with `$FIXTURE_MODE`: `ok` (ready after 300 ms), `err` (main returns an error before
//! ready), `err-io` (main returns an `io::Error` before ready), `panic` (panics before ready), `thread-panic` (another thread panics before ready, which does
//! not fail the start), `hang` (never ready: the launcher's 2 s timeout ends it), `hang-hard` (as `hang`,
//! but ignoring SIGTERM: the launcher must resort to SIGKILL).
use std::time::Duration;

use daemon_runtime::daemon;

#[daemon(readiness = "manual", ready_timeout = 2)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("FIXTURE_MODE").as_deref() {
        Ok("err") => return Err("cannot bind 127.0.0.1:1: address in use".into()),
        Ok("err-io") => std::fs::File::open("/nonexistent/app.toml").map(drop)?,
        Ok("panic") => panic!("boom before ready"),
        Ok("thread-panic") => {
            let _ = std::thread::spawn(|| panic!("a worker's panic")).join();
            daemon_runtime::ready()?;
            tests::report_pid_and_wait();
        }
        Ok("hang-hard") => {
            // SAFETY: SIG_IGN runs no code; no other thread exists.
            unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::SIGTERM,
                    nix::sys::signal::SigHandler::SigIgn,
                )
            }?;
            tests::report(&format!("{}\n", std::process::id()));
            tests::linger();
        }
        Ok("hang") => {
            tests::report(&format!("{}\n", std::process::id()));
            tests::linger();
        }
        _ => {
            std::thread::sleep(Duration::from_millis(300));
            tests::report(&format!("{}\n", std::process::id()));
            daemon_runtime::ready()?;
            tests::linger();
        }
    }
    Ok(())
}
