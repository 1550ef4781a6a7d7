//! Log files after the start: [`reopen_logs`] points stdout and stderr at their paths again, for log
//! rotation, even after chroot and the user switch.
//!
//! At start, before chroot, the runtime keeps an `O_PATH` fd of each log file's directory and the file's
//! name; a reopen is an `openat` on it, never a path lookup from the (possibly chrooted) root, and the
//! new file replaces fd 1 or 2 with one `dup2`, which is atomic: a `write(2)` in flight on another thread
//! lands whole in the old file or whole in the new one.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::error::{Error, Step};

/// The mode of a log file the runtime creates, whatever the umask.
const LOG_MODE: u32 = 0o640;

/// One log file, as it can be reopened.
#[derive(Debug)]
struct Target {
    /// The directory, opened `O_PATH` before any chroot.
    dir: OwnedFd,
    /// The file's name in it.
    name: CString,
    /// The path as configured, for messages.
    path: PathBuf,
    /// Who owned the file at start: a rotated file recreated with the same owner is accepted.
    owner: u32,
}

/// What [`reopen_logs`] works from; set once in the daemon, before the body runs.
#[derive(Debug)]
struct Logs {
    stdout: Option<Target>,
    /// `None` when stderr shares stdout's file (the same path) or is not a log file.
    stderr: Option<Target>,
    /// stderr follows stdout.
    shared: bool,
}

static LOGS: OnceLock<Logs> = OnceLock::new();

/// How a log directory is kept: `O_PATH` where there is one (it grants no reading of the directory).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: OFlag = OFlag::O_PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: OFlag = OFlag::O_RDONLY;

/// Which configured log files did not exist before the daemon opened them (those it creates itself get
/// the daemon's user as owner).
#[derive(Debug, Default)]
pub(crate) struct Absent {
    stdout: bool,
    stderr: bool,
}

/// Called before the log files are opened: notes which are absent.
pub(crate) fn absent(stdout: Option<&Path>, stderr: Option<&Path>) -> Absent {
    let missing = |path: Option<&Path>| {
        path.is_some_and(|p| {
            matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        })
    };
    Absent {
        stdout: missing(stdout),
        stderr: missing(stderr),
    }
}

/// Called once stdout and stderr point at the log files, before chroot: gives the files the runtime just
/// created to the daemon's user (`owner`, when one is set), and keeps what a reopen needs.
pub(crate) fn remember(
    stdout: Option<&Path>,
    stderr: Option<&Path>,
    absent: &Absent,
    owner: Option<(Uid, Gid)>,
) -> Result<(), Error> {
    let shared = stdout.is_some() && stdout == stderr;
    let mut stdout_target = None;
    let mut stderr_target = None;
    for (fd, path, created, slot) in [
        (1, stdout, absent.stdout, &mut stdout_target),
        (2, stderr, absent.stderr && !shared, &mut stderr_target),
    ] {
        let Some(path) = path else { continue };
        if fd == 2 && shared {
            continue;
        }
        // SAFETY: fd 1 and 2 stay open for the process's life (they are only ever replaced by dup2).
        let stdio = unsafe { BorrowedFd::borrow_raw(fd) };
        let step = if fd == 1 { Step::Stdout } else { Step::Stderr };
        let stat = fstat(stdio).map_err(|errno| Error::at(step, path, errno))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            // A device (/dev/console, a tty): nothing to rotate.
            continue;
        }
        let mut owner_now = stat.st_uid;
        if created && stat.st_uid == Uid::effective().as_raw() {
            if let Some((uid, gid)) = owner {
                nix::unistd::fchown(stdio, Some(uid), Some(gid))
                    .map_err(|errno| Error::at(step, path, errno))?;
                owner_now = uid.as_raw();
            }
        }
        *slot = Some(target(path, owner_now).map_err(|errno| Error::at(step, path, errno))?);
    }
    // A second start in one process keeps the first daemon's log files.
    let _ = LOGS.set(Logs {
        stdout: stdout_target,
        stderr: stderr_target,
        shared,
    });
    Ok(())
}

fn target(path: &Path, owner: u32) -> Result<Target, Errno> {
    let name = path.file_name().ok_or(Errno::EISDIR)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = nix::fcntl::open(
        parent,
        DIR_FLAGS | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .and_then(crate::fds::above_stdio)?;
    Ok(Target {
        dir,
        name: CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?,
        path: path.to_path_buf(),
        owner,
    })
}

/// Reopens the daemon's log files (the `stdout` and `stderr` paths) and puts them on fds 1 and 2: after
/// logrotate renamed them (its `create` mode), the daemon writes to the new files. A file that is gone is
/// created, mode 0o640, owned by the daemon's user.
///
/// Works after chroot and after the user switch: the directories were opened at start, so the paths need
/// not be reachable from the new root, only writable by the daemon's user (or the new file already there,
/// as logrotate's `create MODE USER GROUP` leaves it). Refuses, leaving fd 1 and 2 as they were, a path
/// that is a symbolic link (never followed, whoever planted it), that is not a regular file, or that
/// belongs to another user than the daemon's, root, or the old file's owner.
///
/// Safe to call from any thread and from a signal event, any number of times: it takes no lock, and each
/// fd is swapped with one `dup2`, so a line written with one `write(2)` goes whole to the old file or whole
/// to the new one (`log`/`tracing` subscribers and `println!` write a line at once; an `eprintln!` with
/// arguments may write it in pieces). Not for a raw signal handler: its error path allocates.
///
/// Without log files (stdio on /dev/null, or in the foreground) it does nothing.
///
/// # Errors
///
/// [`Step::ReopenLogs`] with the path: the file cannot be opened or created (the daemon's user may not
/// write to the directory), or it is refused (see above). fd 1 and 2 then stay as they were.
///
/// ```no_run
/// let _running = daemon_runtime::Daemon::new().stderr("/var/log/app/app.log").start()?;
/// // ... after logrotate moved /var/log/app/app.log away:
/// daemon_runtime::reopen_logs()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn reopen_logs() -> Result<(), Error> {
    let Some(logs) = LOGS.get() else {
        return Ok(());
    };
    if let Some(target) = &logs.stdout {
        let file = reopen(target)?;
        swap(&file, 1, target)?;
        if logs.shared {
            swap(&file, 2, target)?;
        }
    }
    if let Some(target) = &logs.stderr {
        let file = reopen(target)?;
        swap(&file, 2, target)?;
    }
    Ok(())
}

fn swap(file: &OwnedFd, onto: RawFd, target: &Target) -> Result<(), Error> {
    // SAFETY: `file` is open; `onto` is 1 or 2, which dup2 replaces atomically. No Rust object owns 1 or 2
    // (std's handles borrow them by number), so replacing them is sound.
    let result = unsafe { libc::dup2(file.as_raw_fd(), onto) };
    Errno::result(result)
        .map(drop)
        .map_err(|errno| Error::at(Step::ReopenLogs, &target.path, errno))
}

fn reopen(target: &Target) -> Result<OwnedFd, Error> {
    let fail = |errno: Errno| Error::at(Step::ReopenLogs, &target.path, errno);
    let refuse = |why: String| {
        Error::new(
            Step::ReopenLogs,
            Some(target.path.display().to_string()),
            None,
        )
        .with_detail(why)
    };
    // O_NONBLOCK: a FIFO planted at the path fails instead of blocking the caller.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(LOG_MODE);
    let (file, created) = match openat(
        &target.dir,
        target.name.as_c_str(),
        flags | OFlag::O_CREAT | OFlag::O_EXCL,
        mode,
    ) {
        Ok(fd) => (fd, true),
        Err(Errno::EEXIST) => {
            let fd = openat(&target.dir, target.name.as_c_str(), flags, mode).map_err(|errno| {
                match errno {
                    Errno::ELOOP => {
                        refuse("it is a symbolic link, which a reopen never follows".into())
                    }
                    Errno::ENXIO => refuse("it is a FIFO without a reader".into()),
                    errno => fail(errno),
                }
            })?;
            (fd, false)
        }
        Err(errno) => return Err(fail(errno)),
    };
    let file = crate::fds::above_stdio(file).map_err(fail)?;
    let stat = fstat(&file).map_err(fail)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(refuse("it is not a regular file".into()));
    }
    let euid = Uid::effective().as_raw();
    if ![euid, 0, target.owner].contains(&stat.st_uid) {
        return Err(refuse(format!(
            "it belongs to uid {}, neither the daemon's user nor root",
            stat.st_uid
        )));
    }
    if created {
        // The umask may have taken bits off.
        fchmod(&file, mode).map_err(fail)?;
    }
    // The file status flags are shared with fd 1 or 2: leave them as a log file's (blocking, append).
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_WRONLY | OFlag::O_APPEND)).map_err(fail)?;
    Ok(file)
}
