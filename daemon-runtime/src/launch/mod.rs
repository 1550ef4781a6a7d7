//! The launch: what the launching process does before the daemon exists. It prepares (closes the
//! inherited fds, takes the systemd variables, resets the signals), forks (fork.rs: an intermediate
//! process that calls `setsid` and forks the daemon), and waits for the daemon's report (wait.rs); or, in
//! the foreground, prepares the process itself, and as PID 1 stays behind as a minimal init (init.rs).
//! Each returns to the start, in the process that goes on to set the daemon up.

mod fds;
mod fork;
#[cfg(target_os = "linux")]
mod init;
mod upgrade;
mod wait;

use std::io::Write as _;

use nix::unistd::Pid;

use crate::config::Config;
use crate::error::{Error, Step};
use crate::handshake::Reporter;
use crate::sys::env::SingleThread;
use crate::sys::fd::CloseAll;
use crate::sys::proc_status::ProcStatus;
use crate::sys::signal::{SavedHup, hold_hup, reset, restore_hup};
use crate::sys::threads::Trust;
use crate::systemd::{listen, notify};
use crate::threads;

pub(crate) use upgrade::{Successor, upgrading};

/// The program's word about its entry, which only the macro's glue (and `Daemon::start_unchecked`, for
/// `trust`) can give: see [`CloseAll`] and [`Trust`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Entry {
    /// Every fd above 2 but the kept ones may be closed, by number.
    pub(crate) close_all: Option<CloseAll>,
    /// An unknown thread count is taken to be one.
    pub(crate) trust: Option<Trust>,
}

/// The daemon, after the forks: what its setup needs.
pub(crate) struct Detached {
    /// The pipe to the launcher.
    pub(crate) reporter: Reporter,
    /// The daemon runs one thread, until its setup starts one.
    pub(crate) alone: SingleThread,
    /// The intermediate process, the daemon's parent until it exits.
    pub(crate) intermediate: Pid,
    /// The SIGHUP disposition to restore, once detached.
    pub(crate) hup: SavedHup,
    /// The launcher opened a notify socket.
    pub(crate) notify: bool,
    /// What the daemon this one upgrades handed over, in an upgrade.
    pub(crate) successor: Option<Successor>,
}

/// The process in the foreground, prepared.
pub(crate) struct Attached {
    /// The process runs one thread, as far as it could tell.
    pub(crate) alone: Option<SingleThread>,
    /// What the daemon this one upgrades handed over, in an upgrade.
    pub(crate) successor: Option<Successor>,
}

/// Daemonizes: returns in the daemon; in the launcher, exits 0 once the daemon is ready, or returns why
/// not.
pub(crate) fn background(config: &Config, entry: Entry) -> Result<Detached, Error> {
    // /proc/self/status, read only from procfs; without it threads.rs asks the kernel another way.
    let (status, known_alone) = launch_status(entry);
    let alone = match known_alone {
        Some(alone) => alone,
        None => threads::check(status.as_ref(), entry.trust)?,
    };
    // What the program printed and stdout still buffers must not be printed again by the children. At the
    // program's entry nothing was printed, and asking would set stdout up for nothing.
    if entry.close_all.is_none() {
        let _ = std::io::stdout().flush();
    }
    // An upgrade's hand-over is taken in either mode, before the inherited fds are closed.
    let (successor, handed_over) = upgrade::take_env(Some(&alone))?;
    let mut keep = config.keep_fds.clone();
    keep.extend(handed_over);
    fds::close_inherited(&keep, entry.close_all, status.map(|s| s.fd_table))?;
    // Socket activation is for the foreground; a forking daemon binds its own sockets (the passed fds
    // were closed just above).
    listen::discard_env(&alone);
    notify::open(Some(&alone))?;
    // Asked here, where the answer is at hand: in the daemon it would cost a page of its own.
    let notify = notify::active();
    let signals = |errno| Error::os(Step::Signals, None, errno);
    reset(status.map(|s| s.ignored)).map_err(signals)?;
    let hup = hold_hup().map_err(signals)?;
    let result = fork::fork(config, &alone, hup, notify, successor);
    if result.is_err() {
        // Only the launcher gets here with an error: give it back the SIGHUP disposition it had. (The
        // daemon restores its own before reporting ready.)
        let _ = restore_hup(&hup);
    }
    result
}

/// What the launch reads from `/proc/self/status` (`None` where it does without, or cannot), and the
/// thread count when known. At the program's entry (`#[daemon]` on a binary's root `main`) the read is
/// skipped when the fd table is known to be small (launch/fds.rs, `table_is_small`: one `close_range` closes
/// every fd) and one system call says a single thread runs (threads.rs). Only the ignored signals are
/// left, asked one `sigaction` each, which costs less than having the kernel print the whole file (about
/// 20 µs less on the way to ready).
fn launch_status(entry: Entry) -> (Option<ProcStatus>, Option<SingleThread>) {
    // Only where the thread count is known without /proc: a seccomp filter that refuses `unshare`
    // (Docker's default) would leave it to the caller's word, where /proc can still count.
    if entry.close_all.is_some()
        && entry.trust.is_some()
        && fds::table_is_small()
        && let Some(alone) = threads::known_alone()
    {
        return (None, Some(alone));
    }
    (ProcStatus::read(), None)
}

/// Foreground (systemd `Type=notify`, PID 1, or forced): no fork; the fds systemd passed are taken over,
/// the others closed, the signals reset. As PID 1 (a container's entry point) a minimal init stays PID 1
/// and the program goes on as its child, so that SIGTERM and SIGINT act on it as on any process.
pub(crate) fn foreground(config: &Config, entry: Entry) -> Result<Attached, Error> {
    let status = ProcStatus::read();
    // Several threads may run in the foreground (a builder called late); the environment is then left
    // as it is. The caller's word counts only at the program's entry, the one place it promises one
    // thread in the foreground too (`start_unchecked`'s covers forking only).
    let trust = entry.trust.filter(|_| entry.close_all.is_some());
    let alone = threads::check(status.as_ref(), trust).ok();
    let mut keep = config.keep_fds.clone();
    // Socket activation: the fds systemd passed, if they are for this process; an upgrade's hand-over.
    keep.extend(listen::take_env(alone.as_ref()));
    let (successor, handed_over) = upgrade::take_env(alone.as_ref())?;
    keep.extend(handed_over);
    fds::close_inherited(&keep, entry.close_all, status.map(|s| s.fd_table))?;
    notify::open(alone.as_ref())?;
    reset(status.map(|s| s.ignored)).map_err(|errno| Error::os(Step::Signals, None, errno))?;
    #[cfg(target_os = "linux")]
    if std::process::id() == 1
        && let Some(alone) = &alone
    {
        init::become_init(alone, config)?;
    }
    Ok(Attached { alone, successor })
}
