//! The setup: the daemon(7) steps the daemon takes after the forks (or the process in the foreground),
//! in order (steps.rs), then the report that it is ready, to the launcher and to systemd.

mod steps;

use std::time::Duration;

use nix::unistd::Pid;

use crate::config::Config;
use crate::error::{Error, Step};
use std::os::fd::OwnedFd;

use crate::handshake::Reporter;
use crate::launch::{Attached, Detached, Successor};
use crate::logfile::reopen;
use crate::pidfile::PidFile;
use crate::readiness;
use crate::sys::signal::restore_hup;
use crate::systemd::watchdog;

pub(crate) use steps::Hook;

/// The longest the daemon waits for the intermediate process to exit (it exits right after its fork).
const PARENT_EXIT_WAIT: Duration = Duration::from_secs(10);

/// The daemon: sets itself up, reports, and returns to run the body; a failure is reported to the
/// launcher and ends the process.
pub(crate) fn daemon(config: &Config, detached: Detached, privileged: Hook<'_>) -> Option<PidFile> {
    let Detached {
        reporter,
        alone,
        intermediate,
        hup,
        notify,
        successor,
    } = detached;
    let (handed_over, upgrade) = split(successor);
    // The reopen handler goes in after SIGHUP's disposition is restored, which would undo it.
    let set_up =
        steps::run(config, true, privileged, Some(alone), handed_over).and_then(|pid_file| {
            restore_hup(&hup).map_err(|errno| Error::os(Step::Signals, None, errno))?;
            reopen_logs_on(config)?;
            Ok(pid_file)
        });
    let pid_file = match set_up {
        Ok(pid_file) => pid_file,
        Err(error) => {
            if let Some(upgrade) = upgrade {
                upgrade.fail(&error);
            }
            reporter.fail_and_exit(&error)
        }
    };
    let successor = successor_of(upgrade, pid_file.as_ref());
    // Ready, and the body, only once the intermediate has exited: the daemon's parent is then init (or
    // the nearest subreaper), as the body may expect, and systemd accepts its `MAINPID=` (it refuses one
    // whose parent is alive and not systemd).
    wait_for_exit(intermediate);
    // A failure to notify systemd reaches the launcher, which prints it.
    if readiness::setup_done(config.readiness, Some(reporter), successor, notify).is_err() {
        // Released (and removed where it still may be) before the exit: a failed start leaves nothing.
        drop(pid_file);
        crate::sys::process::exit_now(1);
    }
    watchdog::start(config.watchdog);
    pid_file
}

/// In the foreground: the same steps, with stdio kept but for the configured log files.
pub(crate) fn foreground(
    config: &Config,
    attached: Attached,
    privileged: Hook<'_>,
) -> Result<Option<PidFile>, Error> {
    let (handed_over, upgrade) = split(attached.successor);
    let set_up = steps::run(config, false, privileged, attached.alone, handed_over)
        .and_then(|pid_file| reopen_logs_on(config).map(|()| pid_file));
    let pid_file = match set_up {
        Ok(pid_file) => pid_file,
        Err(error) => {
            if let Some(upgrade) = upgrade {
                upgrade.fail(&error);
            }
            return Err(error);
        }
    };
    let successor = successor_of(upgrade, pid_file.as_ref());
    readiness::setup_done(
        config.readiness,
        None,
        successor,
        crate::systemd::notify::active(),
    )?;
    watchdog::start(config.watchdog);
    Ok(pid_file)
}

/// In an upgrade: the lock handed over (with the old daemon's pid), for the steps; and the pipe to
/// `upgrade`, told this process's pid at once, so that it can end this daemon if it never gets ready.
fn split(successor: Option<Successor>) -> (Option<(OwnedFd, u32)>, Option<Reporter>) {
    match successor {
        Some(successor) => {
            successor.report.pid(std::process::id());
            (
                Some((successor.lock, successor.predecessor)),
                Some(successor.report),
            )
        }
        None => (None, None),
    }
}

/// What readiness does for `upgrade`: tell it, after writing this daemon's record.
fn successor_of(
    report: Option<Reporter>,
    pid_file: Option<&PidFile>,
) -> Option<readiness::Successor> {
    report.map(|report| readiness::Successor {
        report,
        on_ready: pid_file.map_or_else(
            || -> Box<dyn FnOnce() + Send> { Box::new(|| {}) },
            PidFile::record_on_ready,
        ),
    })
}

/// Installs the `reopen_logs_on` handler, if asked.
fn reopen_logs_on(config: &Config) -> Result<(), Error> {
    config.reopen_logs_on.map_or(Ok(()), reopen::on_signal)
}

/// Waits until `parent`, the intermediate process (which exits right after its fork), is gone, so that
/// this process has been reparented. Usually it is gone already: one `getppid`. Else, on Linux, a pidfd
/// says when it exits (the kernel reparents its children before that); elsewhere, or without pidfds
/// (Linux before 5.3), `getppid` is asked again after each short sleep. Bounded, so that an intermediate
/// held up by something else (a debugger) cannot hold the daemon for ever.
fn wait_for_exit(parent: Pid) {
    if nix::unistd::getppid() != parent {
        return;
    }
    let deadline = std::time::Instant::now() + PARENT_EXIT_WAIT;
    #[cfg(target_os = "linux")]
    match crate::sys::process::pidfd_open(parent) {
        Ok(pidfd) => {
            let _ = crate::sys::process::pidfd_wait(&pidfd, PARENT_EXIT_WAIT);
            return;
        }
        // Exited and reaped already.
        Err(nix::errno::Errno::ESRCH) => return,
        Err(_) => {}
    }
    while nix::unistd::getppid() == parent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}
