//! The launcher's wait: it reads the daemon's report, exits 0 once the daemon is ready, stops a daemon that
//! missed the ready timeout, and removes what a failed daemon left.

use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::Config;
use crate::error::{Error, Step};
use crate::handshake::{self, Report};

/// How long a daemon that missed the ready timeout gets to exit after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Waits for the daemon's report: exits 0 once it is ready, or returns its error.
pub(super) fn launcher(read_end: &OwnedFd, child: Pid, config: &Config) -> Error {
    let error = match handshake::wait(read_end, config.ready_timeout) {
        Ok(Report::Ready) => std::process::exit(0),
        Ok(Report::Failed(error)) | Err(error) => error,
        Ok(Report::Closed) => Error::new(Step::NotReady, None, None),
        Ok(Report::TimedOut) => {
            let outcome = stop(read_end, child);
            Error::new(
                Step::Timeout,
                Some(format!("{:?}", config.ready_timeout)),
                None,
            )
            .with_detail(outcome)
        }
    };
    // The intermediate exits right after its fork; reap it.
    let _ = nix::sys::wait::waitpid(child, None);
    if error.step() != Step::AlreadyRunning {
        clean_up_after(config);
    }
    error
}

/// A daemon that failed may have left its pid and lock files: it was killed (the ready timeout), died of
/// a signal, or could no longer remove them once its privileges were dropped. The launcher, still who
/// started it, removes them once the lock is released (it goes with the daemon's last descriptor, right
/// after its report), waiting at most `STOP_GRACE`; a lock still held then (a child of the daemon's) keeps
/// them.
fn clean_up_after(config: &Config) {
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while !config.clean_up_pid_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a daemon that missed the ready timeout: SIGTERM to its process group (whose id is the
/// intermediate's pid, since that process called setsid), then SIGKILL if the pipe has not closed within
/// `STOP_GRACE`. Says what happened.
fn stop(read_end: &OwnedFd, intermediate: Pid) -> &'static str {
    let group = Pid::from_raw(-intermediate.as_raw());
    if kill(group, Signal::SIGTERM).is_err() {
        return "it had already exited";
    }
    match handshake::wait(read_end, STOP_GRACE) {
        Ok(Report::TimedOut) => {
            let _ = kill(group, Signal::SIGKILL);
            // SIGKILL cannot be refused: wait (briefly) for the pipe to close, so that the daemon is gone
            // when the launcher says so.
            let _ = handshake::wait(read_end, STOP_GRACE);
            "it ignored SIGTERM and was killed (SIGKILL)"
        }
        _ => "it was stopped (SIGTERM)",
    }
}
