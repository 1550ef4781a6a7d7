//! The run-time flow: prepare in the launcher, fork, setsid, fork again, set the daemon up, report.

use std::io::Write;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use crate::error::{Error, Step};
use crate::handshake::{self, Report, Reporter};
use crate::pidfile::PidFile;
use crate::privileges::{self, Identity};
use crate::{fds, notify, ready, signals, Daemon, Running};

/// Daemonizes: returns in the daemon; in the launcher, exits 0 once the daemon is ready or returns why not.
pub(crate) fn background(config: &Daemon) -> Result<Running, Error> {
    check_single_threaded()?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    fds::close_inherited(&config.keep_fds)?;
    let hup = signals::reset()?;
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| Error::os(Step::Pipe, None, errno))?;
    // SAFETY: the process is single-threaded (checked above), so the child is a full copy of the only
    // thread and may allocate and run any code; nothing else can hold a lock across the fork.
    match unsafe { fork() } {
        Err(errno) => Err(Error::os(Step::Fork, None, errno)),
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            launcher(read_end, child, config)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            Ok(first_child(Reporter::new(write_end), config, &hup))
        }
    }
}

/// The launcher: waits for the daemon's report, then exits 0 or returns the daemon's error.
fn launcher(read_end: OwnedFd, child: Pid, config: &Daemon) -> Result<Running, Error> {
    let (report, pid) = handshake::wait(&read_end, config.ready_timeout)?;
    // The first child exits right after its fork; reap it.
    let _ = nix::sys::wait::waitpid(child, None);
    match report {
        Report::Ready => std::process::exit(0),
        Report::Failed(error) => Err(error),
        Report::Closed => Err(Error::new(Step::NotReady, None, None)),
        Report::TimedOut => {
            let mut detail = format!("within {:?}", config.ready_timeout);
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                if kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
                    detail.push_str(&format!("; it was stopped (SIGTERM to pid {pid})"));
                }
            }
            Err(Error::new(Step::Timeout, None, None).with_detail(detail))
        }
    }
}

/// The first child: a new session, then the second fork; it exits at once so the daemon is orphaned.
fn first_child(reporter: Reporter, config: &Daemon, hup: &signals::SavedHup) -> Running {
    if let Err(errno) = setsid() {
        fail(reporter, &Error::os(Step::Setsid, None, errno));
    }
    // SAFETY: still the only thread of this process (see `background`).
    match unsafe { fork() } {
        Err(errno) => fail(reporter, &Error::os(Step::Fork, None, errno)),
        Ok(ForkResult::Parent { .. }) => exit_now(0),
        Ok(ForkResult::Child) => daemon(reporter, config, hup),
    }
}

/// The daemon: sets itself up, reports, and returns to run the body.
fn daemon(reporter: Reporter, config: &Daemon, hup: &signals::SavedHup) -> Running {
    reporter.pid(std::process::id());
    let pid_file = match setup(config, true).and_then(|p| signals::restore_hup(hup).map(|()| p)) {
        Ok(pid_file) => pid_file,
        Err(error) => fail(reporter, &error),
    };
    // Without systemd there is no socket to notify, so reporting cannot fail.
    let _ = ready::setup_done(config.ready, Some(reporter), false);
    Running {
        pid_file,
        foreground: false,
    }
}

/// Foreground (systemd `Type=notify`, PID 1, or forced): no fork and stdio kept, the rest as a daemon.
pub(crate) fn foreground(config: &Daemon) -> Result<Running, Error> {
    let mut keep = config.keep_fds.clone();
    keep.extend(notify::listen_fds());
    fds::close_inherited(&keep)?;
    let hup = signals::reset()?;
    signals::restore_hup(&hup)?;
    let pid_file = setup(config, false)?;
    ready::setup_done(config.ready, None, notify::socket().is_some())?;
    Ok(Running {
        pid_file,
        foreground: true,
    })
}

/// The steps after the forks, in order: stdio, umask, pid file, user and group lookup, chroot, chdir,
/// privilege drop. On error, what was done is undone as far as it matters (the pid file is removed).
fn setup(config: &Daemon, detached: bool) -> Result<Option<PidFile>, Error> {
    if detached {
        let has_files = config.stdout.is_some() || config.stderr.is_some();
        if has_files {
            // Log files are created 0o640 exactly; the configured umask follows.
            umask(Mode::empty());
        }
        fds::redirect_stdio(config.stdout.as_deref(), config.stderr.as_deref())?;
    }
    umask(Mode::from_bits_truncate(config.umask as _));
    let pid_file = match &config.pid_file {
        Some(path) => Some(PidFile::acquire(path, std::process::id())?),
        None => None,
    };
    let identity = Identity::resolve(config.user.as_deref(), config.group.as_deref())?;
    if let Some(root) = &config.chroot {
        privileges::chroot(root)?;
    }
    nix::unistd::chdir(&config.workdir)
        .map_err(|errno| Error::at(Step::Chdir, &config.workdir, errno))?;
    identity.apply()?;
    Ok(pid_file)
}

/// Refuses to fork a multi-threaded process: only the calling thread would survive in the child, with
/// whatever locks the others held.
fn check_single_threaded() -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let threads = tasks.count();
        if threads > 1 {
            return Err(Error::new(Step::Threads, None, None).with_detail(format!(
                "{threads} threads are running; daemonize at the start of main, before any thread or async \
                 runtime starts"
            )));
        }
    }
    Ok(())
}

/// Reports `error` to the launcher and ends this process without running destructors or atexit handlers.
fn fail(reporter: Reporter, error: &Error) -> ! {
    reporter.fail(error);
    exit_now(1)
}

/// `_exit(2)`: no second flush of stdio buffers, no atexit handlers, no destructors in a forked child.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it has no preconditions.
    unsafe { libc::_exit(code) }
}
