//! Who holds a lock file's `flock`, found without reading the kernel's global lock table.
//!
//! `/proc/locks` lists every lock of every process and is regenerated on each read: any local user
//! holding a few hundred thousand POSIX locks on files of their own makes each read take seconds, and
//! every control action used to read it, some several times (issue 18.3). And verifying a holder by
//! reading each `/proc/PID/fdinfo/N` of it let a compromised daemon make root's `status` run for hours
//! with descriptors whose fdinfo is megabytes long (an epoll set of 400k items: issue 18.2).
//!
//! So the holder is found from candidates the daemon's own files name (the pid in the pid file, which
//! only root writes, and the pid in the record the daemon writes into the lock file), and each candidate
//! is verified through that process alone: among its descriptors, only those whose link
//! (`/proc/PID/fd/N`, a `readlink` that touches no file system) is the lock file's path and whose inode is
//! the lock file's are looked at further, in the `lock:` lines of their fdinfo, read in a bounded buffer.
//! Whether anyone holds the lock at all is asked by taking it, where the caller may open the file (root,
//! its owner): a non-blocking shared `flock` (see `probe`), released at once or kept, and made
//! exclusive, for a clean-up. Only when both fail (a caller who may not open the file, or a lock held by
//! a process no file names) is `/proc/locks` read, in large reads, within the same deadline. A holder is
//! a daemon only through a read-write descriptor, as the daemon's is (`holds_flock`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// How long finding and verifying a holder may take in all.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);
/// The most of one fdinfo file read: the `lock:` lines of an `flock` come first.
const FDINFO_MAX: usize = 64 * 1024;
/// The most of the record read for the daemon's pid.
const RECORD_MAX: usize = 4096;
/// The most of a pid file read: a pid and a newline.
const PID_FILE_MAX: usize = 32;
/// The most descriptors of one process looked at.
const FDS_MAX: usize = 1 << 22;

/// The lock file, pinned by an `O_PATH` descriptor: its inode cannot be freed and its number reused while
/// it is looked at, and the path can be swapped without effect.
#[derive(Debug)]
pub(crate) struct LockFile {
    pub(crate) fd: OwnedFd,
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    #[cfg_attr(not(feature = "control"), allow(dead_code))] // read by the control actions
    pub(crate) uid: u32,
    /// The file's size when pinned: 0 after a clean exit (the daemon empties the record it leaves).
    #[cfg_attr(not(feature = "control"), allow(dead_code))] // read by the control actions
    pub(crate) size: i64,
    /// How `/proc/locks` and fdinfo `lock:` lines may name it (`MAJOR:MINOR:INODE`): see
    /// `pidfile::locks::ids`.
    pub(crate) ids: Vec<String>,
}

/// What looking at one candidate found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// One of its descriptors holds the lock.
    Holds,
    /// None does (or it is gone).
    DoesNot,
    /// This caller may not look at its descriptors (another user's, or a non-dumpable process).
    Unseen,
}

/// The deadline ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// Whether `pid` holds the exclusive `flock` of `lock`. `hint` is the descriptor the daemon's record
/// says it holds the lock through: looked at first, so that a daemon with a large fd table (or a compromised
/// one that fills it with descriptors of deep paths, each slower to print) is verified at once.
pub(crate) fn verify(
    pid: i32,
    lock: &LockFile,
    hint: Option<i32>,
    deadline: Instant,
) -> Result<Verdict, TimedOut> {
    if let Some(fd) = hint {
        let entry = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        if let Ok(true) = holds_through(pid, &entry, lock) {
            return Ok(Verdict::Holds);
        }
    }
    let dir = format!("/proc/{pid}/fd");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Verdict::DoesNot),
        Err(_) => return Ok(Verdict::Unseen),
    };
    let mut denied = false;
    for entry in entries.take(FDS_MAX) {
        if Instant::now() > deadline {
            return Err(TimedOut);
        }
        let Ok(entry) = entry else { continue };
        match holds_through(pid, &entry.path(), lock) {
            Ok(true) => return Ok(Verdict::Holds),
            Ok(false) => {}
            Err(()) => denied = true,
        }
    }
    Ok(if denied {
        Verdict::Unseen
    } else {
        Verdict::DoesNot
    })
}

/// Whether the descriptor `/proc/PID/fd/N` at `entry` holds the lock; `Err` when this caller may not
/// look.
fn holds_through(pid: i32, entry: &Path, lock: &LockFile) -> Result<bool, ()> {
    // readlink only prints the path the kernel keeps: no file system is reached (a descriptor on a hung
    // FUSE mount cannot hang the caller), and nothing is generated per lock or per epoll item.
    let link = match std::fs::read_link(entry) {
        Ok(link) => link,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => return Err(()),
        Err(_) => return Ok(false),
    };
    if link.as_os_str().as_bytes() != lock.path.as_os_str().as_bytes() {
        return Ok(false);
    }
    // The same path may name another file by now: the inode decides (this is the lock file's own file
    // system, which the caller reached already when it pinned the file).
    let Ok(stat) = nix::sys::stat::stat(entry) else {
        return Ok(false);
    };
    if (stat.st_dev, stat.st_ino) != (lock.dev, lock.ino) {
        return Ok(false);
    }
    let Some(fd) = entry.file_name() else {
        return Ok(false);
    };
    let info = format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy());
    match read_bounded(Path::new(&info), FDINFO_MAX) {
        Ok(text) => Ok(holds_flock(&text, &lock.ids)),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Err(()),
        Err(_) => Ok(false),
    }
}

/// Whether fdinfo text is a daemon's lock descriptor: open read-write (`flags:`, octal; the daemon writes
/// its record through it, while a control action's or a launcher's clean-up takes the lock through a
/// read-only descriptor, and is never a daemon), with a `lock:` line for an exclusive `flock` on a file
/// named by one of `ids`: `lock: 1: FLOCK  ADVISORY  WRITE 4242 fe:00:10011424 0 EOF`.
fn holds_flock(info: &[u8], ids: &[String]) -> bool {
    let read_write = info.split(|b| *b == b'\n').any(|line| {
        line.strip_prefix(b"flags:")
            .and_then(|flags| std::str::from_utf8(flags).ok())
            .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
            .is_some_and(|flags| flags & 0o3 == 0o2)
    });
    read_write
        && info.split(|b| *b == b'\n').any(|line| {
            let Some(rest) = line.strip_prefix(b"lock:") else {
                return false;
            };
            let fields: Vec<&[u8]> = rest
                .split(u8::is_ascii_whitespace)
                .filter(|f| !f.is_empty())
                .collect();
            fields.get(1) == Some(&&b"FLOCK"[..])
                && fields.get(3) == Some(&&b"WRITE"[..])
                && fields
                    .get(5)
                    .is_some_and(|file| ids.iter().any(|id| id.as_bytes() == *file))
        })
}

/// At most `max` bytes of `path`, opened without blocking (a lease another process holds on it cannot
/// hold the open up: it fails with `EWOULDBLOCK` instead, issue 18.5) and without following a symlink.
pub(crate) fn read_bounded(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    read_fd_bounded(File::from(fd), max)
}

fn read_fd_bounded(file: File, max: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Pins the lock file open as `file` (at `path`): an `O_PATH` descriptor of the same inode.
pub(crate) fn pin_open(file: &File, path: &Path) -> std::io::Result<LockFile> {
    let fd = nix::fcntl::open(
        format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = nix::sys::stat::fstat(&fd)?;
    Ok(LockFile {
        ids: crate::pidfile::locks::ids(std::os::fd::AsFd::as_fd(&fd), stat.st_dev, stat.st_ino),
        fd,
        path: path.to_path_buf(),
        dev: stat.st_dev,
        ino: stat.st_ino,
        uid: stat.st_uid,
        size: stat.st_size,
    })
}

/// The lock file itself, opened for reading through its pinned descriptor (so exactly that inode), without
/// blocking on a lease. Fails for a caller who may not read it.
pub(crate) fn reopen(lock: &LockFile) -> std::io::Result<File> {
    let fd = nix::fcntl::open(
        format!("/proc/self/fd/{}", lock.fd.as_raw_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// The daemon's whole record, parsed (`None` when this caller may not read it, or it is torn).
#[cfg(feature = "control")]
pub(crate) fn parsed_record(lock: &LockFile) -> Option<super::record::Parsed> {
    let bytes = read_fd_bounded(reopen(lock).ok()?, RECORD_MAX).ok()?;
    super::record::parse(&bytes)
}

/// The pid the daemon's record names (`pid N`) and the descriptor it says it holds the lock through
/// (`fd N`), where this caller may read the lock file.
pub(crate) fn record_of(lock: &LockFile) -> Option<(i32, Option<i32>)> {
    let bytes = read_fd_bounded(reopen(lock).ok()?, RECORD_MAX).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let field = |name: &str| -> Option<i32> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    let pid = field("pid ").filter(|pid| *pid > 0)?;
    Some((pid, field("fd ").filter(|fd| *fd >= 0)))
}

/// The pid the pid file names, when it is a plausible one (a positive number on its first line).
pub(crate) fn pid_file_pid(pid_file: &Path) -> Option<i32> {
    let bytes = read_bounded(pid_file, PID_FILE_MAX).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// Whether anyone holds the lock, asked by taking it.
#[derive(Debug)]
#[cfg(feature = "control")]
pub(crate) enum Probe {
    /// Nobody did: this file now holds the lock, until it is dropped.
    Free(File),
    /// Someone holds it.
    Held,
}

/// Takes the lock without waiting, where this caller may open the file (`None` where it may not).
///
/// Shared: a daemon holds the lock exclusively, so a shared lock is free exactly when no daemon holds it,
/// and while it is held no daemon can start on the file (which makes removing what a dead daemon left
/// safe). Control actions running at once (two `stop`s, a `status` beside a `stop`) then never hold each
/// other up, and never look like a holder to one another: the holder is always an exclusive lock's, and
/// a process holding the shared one is never signalled.
#[cfg(feature = "control")]
pub(crate) fn probe(lock: &LockFile) -> Option<Probe> {
    let file = reopen(lock).ok()?;
    match file.try_lock_shared() {
        Ok(()) => Some(Probe::Free(file)),
        Err(std::fs::TryLockError::WouldBlock) => Some(Probe::Held),
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// The last resort: the pid `/proc/locks` names for an exclusive `flock` on the file, as printed (0 or
/// -1 for a holder outside this pid namespace), read in large reads (each read makes the kernel walk the
/// table from the start again) until the deadline.
#[cfg(feature = "control")]
pub(crate) fn from_table(ids: &[String], deadline: Instant) -> std::io::Result<Option<i32>> {
    let mut file = File::open(crate::pidfile::locks::PATH)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut carried = Vec::new();
    loop {
        if Instant::now() > deadline {
            return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
        }
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        carried.extend_from_slice(&buffer[..n]);
        let complete = carried
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if let Some(pid) = pid_in(&carried[..complete], ids) {
            return Ok(Some(pid));
        }
        carried.drain(..complete);
    }
    Ok(pid_in(&carried, ids))
}

#[cfg(feature = "control")]
fn pid_in(lines: &[u8], ids: &[String]) -> Option<i32> {
    String::from_utf8_lossy(lines)
        .lines()
        .find_map(|line| crate::pidfile::locks::pid_field(line, ids)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_lock_lines() {
        let ids = ["fe:00:77".to_string()];
        let info = b"pos:\t0\nflags:\t02100002\nmnt_id:\t30\nino:\t77\nlock:\t1: FLOCK  ADVISORY  WRITE 42 fe:00:77 0 EOF\n";
        assert!(holds_flock(info, &ids));
        let shared = b"flags:\t02100002\nlock:\t1: FLOCK  ADVISORY  READ 42 fe:00:77 0 EOF\n";
        assert!(!holds_flock(shared, &ids));
        let posix = b"flags:\t02100002\nlock:\t1: POSIX  ADVISORY  WRITE 42 fe:00:77 0 EOF\n";
        assert!(!holds_flock(posix, &ids));
        let other = b"flags:\t02100002\nlock:\t1: FLOCK  ADVISORY  WRITE 42 fe:00:770 0 EOF\n";
        assert!(!holds_flock(other, &ids));
        // A read-only descriptor is a control action's or a clean-up's, never a daemon's.
        let read_only = b"flags:\t02100000\nlock:\t1: FLOCK  ADVISORY  WRITE 42 fe:00:77 0 EOF\n";
        assert!(!holds_flock(read_only, &ids));
        let no_flags = b"lock:\t1: FLOCK  ADVISORY  WRITE 42 fe:00:77 0 EOF\n";
        assert!(!holds_flock(no_flags, &ids));
    }

    #[test]
    fn a_flock_of_this_process_is_found_through_its_own_descriptors() {
        let dir = std::env::temp_dir().join(format!("daemon-rt-holder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        // Read-write, as a daemon's lock descriptor is.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let pinned =
            nix::fcntl::open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let stat = nix::sys::stat::fstat(&pinned).unwrap();
        let lock = LockFile {
            ids: crate::pidfile::locks::ids(
                std::os::fd::AsFd::as_fd(&pinned),
                stat.st_dev,
                stat.st_ino,
            ),
            fd: pinned,
            path: path.clone(),
            dev: stat.st_dev,
            ino: stat.st_ino,
            uid: stat.st_uid,
            size: stat.st_size,
        };
        let me = i32::try_from(std::process::id()).unwrap();
        let deadline = Instant::now() + DEADLINE;
        assert_eq!(verify(me, &lock, None, deadline), Ok(Verdict::DoesNot));
        #[cfg(feature = "control")]
        assert!(matches!(probe(&lock), Some(Probe::Free(_))));
        file.lock().unwrap();
        assert_eq!(verify(me, &lock, None, deadline), Ok(Verdict::Holds));
        let fd = file.as_raw_fd();
        assert_eq!(verify(me, &lock, Some(fd), deadline), Ok(Verdict::Holds));
        #[cfg(feature = "control")]
        assert!(matches!(probe(&lock), Some(Probe::Held)));
        #[cfg(feature = "control")]
        assert_eq!(from_table(&lock.ids, deadline).unwrap(), Some(me));
        drop(file);
        assert_eq!(verify(me, &lock, Some(fd), deadline), Ok(Verdict::DoesNot));
        // The same lock through a read-only descriptor (a clean-up's) is no daemon's.
        let read_only = std::fs::File::open(&path).unwrap();
        read_only.lock().unwrap();
        assert_eq!(verify(me, &lock, None, deadline), Ok(Verdict::DoesNot));
        drop(read_only);
        #[cfg(feature = "control")]
        assert_eq!(from_table(&lock.ids, deadline).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
