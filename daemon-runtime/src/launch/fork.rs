//! The forks: the launcher starts an intermediate process, which calls `setsid` (a new session, with no
//! controlling terminal), forks the daemon and exits, so that the daemon is not a session leader and can
//! never get a controlling terminal. On x86-64 Linux the intermediate shares the launcher's memory, as
//! with `vfork` (sys/intermediate.rs: nothing is copied for it); elsewhere it is a fork.

use nix::unistd::{Pid, setsid};

use super::{Detached, wait};
use crate::config::Config;
use crate::error::{Error, Step};
use crate::handshake::Reporter;
use crate::sys::env::SingleThread;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use crate::sys::intermediate::{Failure, Side, double_fork};
use crate::sys::process::{Forked, exit_now, fork as fork_one};
use crate::sys::signal::SavedHup;

/// Forks the daemon: returns in the daemon; the launcher waits for its report and exits 0 once it is
/// ready, or returns its error.
pub(super) fn fork(
    config: &Config,
    alone: &SingleThread,
    hup: SavedHup,
    notify: bool,
    successor: Option<super::Successor>,
) -> Result<Detached, Error> {
    let (read_end, write_end) =
        crate::sys::fd::pipe().map_err(|errno| Error::os(Step::Pipe, None, errno))?;
    // Only the daemon uses it; the launcher's copy closes when it returns.
    let mut successor = successor;
    let mut detached = |reporter, alone, intermediate| Detached {
        reporter,
        alone,
        intermediate,
        hup,
        notify,
        successor: successor.take(),
    };
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    match double_fork(alone) {
        Ok(Side::Launcher(leader)) => {
            drop(write_end);
            return Err(launcher_of(&read_end, leader, config, successor.take()));
        }
        Ok(Side::Daemon(alone, intermediate, ready_to_run)) => {
            drop(read_end);
            let reporter = Reporter::new(write_end);
            if let Err(errno) = ready_to_run {
                reporter.fail_and_exit(&Error::os(Step::Fork, None, errno));
            }
            return Ok(detached(reporter, alone, intermediate));
        }
        Err(Failure::Setsid(leader, errno)) => {
            let _ = nix::sys::wait::waitpid(leader, None);
            return Err(Error::os(Step::Setsid, None, errno));
        }
        Err(Failure::Fork(leader, errno)) => {
            let _ = nix::sys::wait::waitpid(leader, None);
            return Err(Error::os(Step::Fork, None, errno));
        }
        Err(Failure::Clone(errno)) => return Err(Error::os(Step::Fork, None, errno)),
        Err(Failure::Unsupported) => {}
    }
    match fork_one(alone) {
        Err(errno) => Err(Error::os(Step::Fork, None, errno)),
        Ok(Forked::Parent(child)) => {
            drop(write_end);
            Err(launcher_of(&read_end, child, config, successor.take()))
        }
        Ok(Forked::Child(alone)) => {
            drop(read_end);
            let (reporter, alone, intermediate) = intermediate(Reporter::new(write_end), &alone);
            Ok(detached(reporter, alone, intermediate))
        }
    }
}

/// The launcher's wait. In an upgrade, what the daemon failed of also goes to `upgrade` (a daemon that
/// missed its ready timeout, stopped here, could not say it); the lock is the daemon's to hold.
fn launcher_of(
    read_end: &std::os::fd::OwnedFd,
    child: Pid,
    config: &Config,
    successor: Option<super::Successor>,
) -> Error {
    let report = successor.map(|successor| successor.report);
    let error = wait::launcher(read_end, child, config);
    if let Some(report) = report {
        report.fail(&error);
    }
    error
}

/// The intermediate process: a new session, then the second fork; it exits at once so the daemon is
/// orphaned. Returns in the daemon, with the intermediate's pid (the session's id: the daemon's parent
/// until it exits).
fn intermediate(reporter: Reporter, alone: &SingleThread) -> (Reporter, SingleThread, Pid) {
    let session = match setsid() {
        Ok(session) => session,
        Err(errno) => reporter.fail_and_exit(&Error::os(Step::Setsid, None, errno)),
    };
    match fork_one(alone) {
        Err(errno) => reporter.fail_and_exit(&Error::os(Step::Fork, None, errno)),
        Ok(Forked::Parent(_)) => exit_now(0),
        Ok(Forked::Child(alone)) => (reporter, alone, session),
    }
}
