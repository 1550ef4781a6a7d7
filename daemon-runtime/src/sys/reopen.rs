//! Reopening the log files onto stdout and stderr, async-signal-safe (a signal handler does it): an
//! `openat` from the directory descriptor kept at start, checks on the opened descriptor, and one `dup2`
//! onto fd 1 or 2, which is atomic, so a `write(2)` in flight on another thread lands whole in the old
//! file or whole in the new one. System calls on descriptors and C strings made at start only: no
//! allocation, no lock (`OnceLock::get` is an atomic load).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat};
use nix::unistd::Uid;

/// The mode of a log file the runtime creates, whatever the umask.
pub(crate) const LOG_MODE: libc::mode_t = 0o640;

/// One log file, as it can be reopened.
#[derive(Debug)]
pub(crate) struct Target {
    /// The directory the checked walk of the path ended in, opened before any chroot; `None` when it is
    /// outside the chroot (kept, it would be a way out of the jail).
    pub(crate) dir: Option<OwnedFd>,
    /// The file's name in it (after any symlink of the path was followed).
    pub(crate) name: CString,
    /// Who owned the file at start: a rotated file recreated with the same owner is accepted.
    pub(crate) owner: u32,
}

/// The log files of the daemon.
#[derive(Debug)]
pub(crate) struct Targets {
    pub(crate) stdout: Option<Target>,
    /// `None` when stderr shares stdout's file (the same path) or is not a log file.
    pub(crate) stderr: Option<Target>,
    /// stderr follows stdout.
    pub(crate) shared: bool,
}

static TARGETS: OnceLock<Targets> = OnceLock::new();

/// Keeps `targets` for every reopen to come; a second start in one process keeps the first daemon's.
pub(crate) fn install(targets: Targets) {
    let _ = TARGETS.set(targets);
}

/// Which log file a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Stdout,
    Stderr,
}

/// Why a log file was not reopened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Os(Errno),
    Symlink,
    Fifo,
    NotRegular,
    Owner(u32),
    Links,
    OutsideChroot,
}

/// Reopens the log files in turn, stdout first: the fd of the file that failed stays as it was, but when
/// stderr's fails, stdout has already moved to its new file. Without log files it does nothing.
pub(crate) fn all() -> Result<(), (Which, Refusal)> {
    let Some(targets) = TARGETS.get() else {
        return Ok(());
    };
    if let Some(target) = &targets.stdout {
        let file = reopen(target).map_err(|why| (Which::Stdout, why))?;
        nix::unistd::dup2_stdout(&file).map_err(|errno| (Which::Stdout, Refusal::Os(errno)))?;
        if targets.shared {
            nix::unistd::dup2_stderr(&file).map_err(|errno| (Which::Stdout, Refusal::Os(errno)))?;
        }
    }
    if let Some(target) = &targets.stderr {
        let file = reopen(target).map_err(|why| (Which::Stderr, why))?;
        nix::unistd::dup2_stderr(&file).map_err(|errno| (Which::Stderr, Refusal::Os(errno)))?;
    }
    Ok(())
}

fn reopen(target: &Target) -> Result<OwnedFd, Refusal> {
    // O_NONBLOCK: a FIFO planted at the path fails instead of blocking the caller.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(LOG_MODE);
    let dir = target.dir.as_ref().ok_or(Refusal::OutsideChroot)?;
    let (file, created) = match openat(
        dir,
        target.name.as_c_str(),
        flags | OFlag::O_CREAT | OFlag::O_EXCL,
        mode,
    ) {
        Ok(fd) => (fd, true),
        Err(Errno::EEXIST) => {
            let fd =
                openat(dir, target.name.as_c_str(), flags, mode).map_err(|errno| match errno {
                    Errno::ELOOP => Refusal::Symlink,
                    Errno::ENXIO => Refusal::Fifo,
                    errno => Refusal::Os(errno),
                })?;
            (fd, false)
        }
        Err(errno) => return Err(Refusal::Os(errno)),
    };
    let file = super::fd::above_stdio(file).map_err(Refusal::Os)?;
    let stat = fstat(&file).map_err(Refusal::Os)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Refusal::NotRegular);
    }
    let euid = Uid::effective().as_raw();
    if ![euid, 0, target.owner].contains(&stat.st_uid) {
        return Err(Refusal::Owner(stat.st_uid));
    }
    // As at start (review F5): a second name could be any file of the daemon's user or root.
    if stat.st_nlink > 1 {
        return Err(Refusal::Links);
    }
    if created {
        // The umask may have taken bits off.
        fchmod(&file, mode).map_err(Refusal::Os)?;
    }
    // The file status flags are shared with fd 1 or 2: leave them as a log file's (blocking, append).
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_WRONLY | OFlag::O_APPEND)).map_err(Refusal::Os)?;
    Ok(file)
}
