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
const LOG_MODE: libc::mode_t = 0o640;

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
        // Only what this start created: absent before, ours, empty, one link. (A hard link to a root
        // file planted in between, where protected_hardlinks is off, must not be given away.)
        let ours =
            stat.st_uid == Uid::effective().as_raw() && stat.st_nlink == 1 && stat.st_size == 0;
        if created && ours {
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
    reopen_all().map_err(|(target, why)| why.error(target))
}

/// Why a log file was not reopened. No allocation: [`reopen_all`] also runs in a signal handler.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Os(Errno),
    Symlink,
    Fifo,
    NotRegular,
    Owner(u32),
}

impl Refusal {
    fn error(self, target: &Target) -> Error {
        let refuse = |why: String| {
            Error::new(
                Step::ReopenLogs,
                Some(target.path.display().to_string()),
                None,
            )
            .with_detail(why)
        };
        match self {
            Refusal::Os(errno) => Error::at(Step::ReopenLogs, &target.path, errno),
            Refusal::Symlink => {
                refuse("it is a symbolic link, which a reopen never follows".into())
            }
            Refusal::Fifo => refuse("it is a FIFO without a reader".into()),
            Refusal::NotRegular => refuse("it is not a regular file".into()),
            Refusal::Owner(uid) => refuse(format!(
                "it belongs to uid {uid}, neither the daemon's user nor root"
            )),
        }
    }
}

/// The work of [`reopen_logs`], async-signal-safe: system calls on fds and C strings made at start, no
/// allocation, no lock (`OnceLock::get` is an atomic load).
fn reopen_all() -> Result<(), (&'static Target, Refusal)> {
    let Some(logs) = LOGS.get() else {
        return Ok(());
    };
    if let Some(target) = &logs.stdout {
        let file = reopen(target).map_err(|why| (target, why))?;
        swap(&file, 1).map_err(|why| (target, why))?;
        if logs.shared {
            swap(&file, 2).map_err(|why| (target, why))?;
        }
    }
    if let Some(target) = &logs.stderr {
        let file = reopen(target).map_err(|why| (target, why))?;
        swap(&file, 2).map_err(|why| (target, why))?;
    }
    Ok(())
}

fn swap(file: &OwnedFd, onto: RawFd) -> Result<(), Refusal> {
    // SAFETY: `file` is open; `onto` is 1 or 2, which dup2 replaces atomically. No Rust object owns 1 or 2
    // (std's handles borrow them by number), so replacing them is sound.
    let result = unsafe { libc::dup2(file.as_raw_fd(), onto) };
    Errno::result(result).map(drop).map_err(Refusal::Os)
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
                    Errno::ELOOP => Refusal::Symlink,
                    Errno::ENXIO => Refusal::Fifo,
                    errno => Refusal::Os(errno),
                }
            })?;
            (fd, false)
        }
        Err(errno) => return Err(Refusal::Os(errno)),
    };
    let file = crate::fds::above_stdio(file).map_err(Refusal::Os)?;
    let stat = fstat(&file).map_err(Refusal::Os)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Refusal::NotRegular);
    }
    let euid = Uid::effective().as_raw();
    if ![euid, 0, target.owner].contains(&stat.st_uid) {
        return Err(Refusal::Owner(stat.st_uid));
    }
    if created {
        // The umask may have taken bits off.
        fchmod(&file, mode).map_err(Refusal::Os)?;
    }
    // The file status flags are shared with fd 1 or 2: leave them as a log file's (blocking, append).
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_WRONLY | OFlag::O_APPEND)).map_err(Refusal::Os)?;
    Ok(file)
}

/// Reopens the log files on `signal` (`SIGHUP`, `SIGUSR1` or `SIGUSR2`) from now on, in the signal handler
/// itself, through signal-hook-registry: the program's own subscriptions ([`signals()`](crate::signals),
/// `tokio::signal`, `signal-hook`) to the same signal still get it. A failure is one line on stderr.
pub(crate) fn reopen_on(signal: crate::Signal) -> Result<(), Error> {
    let number = signal.number();
    // SAFETY: the action is async-signal-safe: `reopen_all` makes system calls on fds and C strings
    // prepared at start and allocates nothing, and the failure path is one write(2) of a static message.
    // It takes no lock, so it cannot deadlock with the code it interrupts.
    let registered = unsafe { signal_hook_registry::register(number, on_signal) };
    registered.map(drop).map_err(|error| {
        Error::new(Step::ReopenLogs, None, error.raw_os_error()).with_detail(format!(
            "cannot handle signal {number} to reopen the log files"
        ))
    })
}

/// The handler of `reopen_logs_on`: on failure, `cannot reopen log file PATH: WHY` on stderr (still the
/// old file), written piece by piece without allocating.
fn on_signal() {
    let Err((target, why)) = reopen_all() else {
        return;
    };
    let mut number = [0u8; 32];
    let why: &[u8] = match why {
        Refusal::Os(errno) => digits(&mut number, b"os error ", errno as u32),
        Refusal::Symlink => b"it is a symbolic link, which a reopen never follows",
        Refusal::Fifo => b"it is a FIFO without a reader",
        Refusal::NotRegular => b"it is not a regular file",
        Refusal::Owner(uid) => digits(&mut number, b"it belongs to uid ", uid),
    };
    for piece in [
        b"daemon-runtime: cannot reopen log file ".as_slice(),
        target.path.as_os_str().as_bytes(),
        b": ",
        why,
        b"\n",
    ] {
        // SAFETY: write(2) of a live buffer to fd 2: async-signal-safe. Nothing to do if it fails.
        unsafe { libc::write(2, piece.as_ptr().cast(), piece.len()) };
    }
}

/// `prefix` then `n` in decimal, in `buffer` (which must hold `prefix.len()` + 10 bytes); no allocation.
fn digits<'a>(buffer: &'a mut [u8; 32], prefix: &[u8], n: u32) -> &'a [u8] {
    let mut text = [0u8; 10];
    let mut start = text.len();
    let mut rest = n;
    loop {
        start -= 1;
        text[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let length = prefix.len() + text.len() - start;
    buffer[..prefix.len()].copy_from_slice(prefix);
    buffer[prefix.len()..length].copy_from_slice(&text[start..]);
    &buffer[..length]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_formats_without_allocating() {
        let mut buffer = [0u8; 32];
        assert_eq!(digits(&mut buffer, b"os error ", 13), b"os error 13");
        assert_eq!(digits(&mut buffer, b"uid ", 0), b"uid 0");
        assert_eq!(
            digits(&mut buffer, b"it belongs to uid ", u32::MAX),
            b"it belongs to uid 4294967295"
        );
    }
}
