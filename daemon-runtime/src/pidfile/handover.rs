//! The lock handed over to a new daemon (`upgrade`), with no moment when nobody holds it.
//!
//! An `flock` belongs to the open file description, so the new daemon, given a duplicate of the old one's
//! lock descriptor (`pidfd_getfd`, then inherited), holds the very same lock: while both run, both hold
//! it, and when the old one exits, the new one still does. The pid file is written by `upgrade` itself
//! (root's, as the files are), atomically, once the new daemon is ready; until then it names the old
//! daemon, which serves. From that moment the old daemon is *superseded*: the pid file names another
//! process than it and its predecessor, so it leaves both files and the record to its successor, and its
//! Terminate event says why ([`Term::Upgraded`](crate::signal::Term::Upgraded)).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{
    Dir, Lock, PidFile, Rules, check, dir_error, id_of, lock_path, name_of, names_in,
    remove_if_names,
};
#[cfg(all(feature = "control", target_os = "linux"))]
use super::{PID_FILE_MODE, pid_error};
use crate::error::{Error, Step};

/// This process's pid file while it holds the lock: its path, the pid that locked it, and the daemon it
/// took the lock over from (an upgrade), if any.
struct Running {
    path: PathBuf,
    owner: u32,
    predecessor: Option<u32>,
    /// The lock file's device and inode: a successor holds a descriptor of it.
    lock: (u64, u64),
    /// A duplicate of the lock's descriptor, to see an `upgrade` in progress (its OFD lock).
    file: Option<File>,
}

static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
/// Once superseded, always: the files and the record are the successor's from then on.
static SUPERSEDED: AtomicBool = AtomicBool::new(false);

/// Remembers the pid file this process holds (and its lock file), for [`superseded`].
pub(super) fn running(path: &Path, owner: u32, predecessor: Option<u32>, lock: &File) {
    *RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Running {
        path: path.to_path_buf(),
        owner,
        predecessor,
        lock: id_of(lock),
        file: lock.try_clone().ok(),
    });
}

/// Whether an upgrade replaced this daemon: its pid file names another process than the one that holds
/// the lock here and the daemon that handed the lock over to it, while an `upgrade` holds its lock on the
/// lock file (it does until this daemon has exited), or that process is seen holding a descriptor of the
/// same lock file (which only a daemon given the lock does). A pid file that is missing, unreadable,
/// names no pid or a process with no part in an upgrade proves nothing, and is not taken for one.
pub(crate) fn superseded() -> bool {
    if SUPERSEDED.load(Ordering::SeqCst) {
        return true;
    }
    let running = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(running) = running.as_ref() else {
        return false;
    };
    let named = named_pid(&running.path);
    let upgrading = running.file.as_ref().is_some_and(upgrade_in_progress);
    let replaced = named.is_some_and(|pid| {
        pid != running.owner
            && Some(pid) != running.predecessor
            && (upgrading || holds(pid, running.lock))
    });
    if replaced {
        SUPERSEDED.store(true, Ordering::SeqCst);
    }
    replaced
}

/// At the pid file's release: decides [`superseded`] once more (it stays decided) and closes the
/// duplicate of the lock's descriptor, so that the lock goes with the lock's own descriptor.
pub(super) fn release() {
    let _ = superseded();
    *RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// Whether the pid file names this process (an upgrade's new daemon, once `upgrade` switched to it).
pub(super) fn named_here() -> bool {
    let running = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    running
        .as_ref()
        .is_some_and(|running| named_pid(&running.path) == Some(running.owner))
}

/// Whether an `upgrade` is in progress on this daemon's lock file (it holds its lock on it).
pub(super) fn upgrade_running() -> bool {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .and_then(|running| running.file.as_ref())
        .is_some_and(upgrade_in_progress)
}

/// Whether an `upgrade` holds its lock on the lock file.
#[cfg(target_os = "linux")]
fn upgrade_in_progress(file: &File) -> bool {
    crate::sys::fd::ofd_write_locked(file)
}

#[cfg(not(target_os = "linux"))]
fn upgrade_in_progress(_file: &File) -> bool {
    false
}

/// Whether process `pid` has a descriptor of the file of device and inode `file` (where this process
/// may look: a non-dumpable process of another user hides its descriptors).
#[cfg(target_os = "linux")]
fn holds(pid: u32, file: (u64, u64)) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .any(|meta| (meta.dev(), meta.ino()) == file)
}

/// Elsewhere there is no upgrade.
#[cfg(not(target_os = "linux"))]
fn holds(_pid: u32, _file: (u64, u64)) -> bool {
    false
}

/// The pid the file at `path` names, read without following a symlink or blocking on a FIFO.
fn named_pid(path: &Path) -> Option<u32> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let file = File::from(nix::fcntl::open(path, flags, Mode::empty()).ok()?);
    let mut buffer = [0u8; 32];
    let n = file.read_at(&mut buffer, 0).ok()?;
    std::str::from_utf8(&buffer[..n])
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

impl PidFile {
    /// Takes over the lock `lock` that the daemon `predecessor` handed over (an upgrade): checks that it
    /// is the lock file of `path`, in its checked directory, and that this open file holds its `flock`.
    /// The pid file is left as it is: the upgrade writes it once this daemon is ready. The record is
    /// written from then on too ([`PidFile::attach_record`]).
    pub(crate) fn adopt(path: &Path, lock: OwnedFd, predecessor: u32) -> Result<PidFile, Error> {
        let dir = Dir::of(path).map_err(|(dir, why)| dir_error(path, &dir, why))?;
        let lock_file = lock_path(path);
        let file = File::from(lock);
        check(&file, &lock_file, Step::LockFile, Rules::LOCK_FILE)?;
        let refuse = |why: &str| {
            Err(Error::at(Step::LockFile, &lock_file, Errno::EINVAL)
                .with_detail(format!("the lock handed over by the upgrade {why}")))
        };
        if !names_in(&dir, name_of(&lock_file), id_of(&file)) {
            return refuse("is not the file this path names");
        }
        // Taking an flock again through the open file that holds it succeeds; through any other open
        // file of the lock file, it would fail while the old daemon holds it.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return refuse("is held by another open file than the one handed over");
            }
            Err(std::fs::TryLockError::Error(error)) => {
                let errno = Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO));
                return Err(Error::at(Step::LockFile, &lock_file, errno));
            }
        }
        let owner = std::process::id();
        running(path, owner, Some(predecessor), &file);
        Ok(PidFile {
            path: path.to_path_buf(),
            id: None,
            lock: Lock {
                path: lock_file,
                file,
                owner,
                adopted: true,
                taken_over: false,
                left: false,
            },
        })
    }
}

impl PidFile {
    /// What writes the daemon's record once it is ready: an upgrade's new daemon writes none before, while
    /// the old one still answers.
    pub(crate) fn record_on_ready(&self) -> Box<dyn FnOnce() + Send> {
        let duplicate = self.lock.file.try_clone().ok();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.lock.file);
        Box::new(move || {
            if let Some(duplicate) = duplicate {
                super::record::attach(duplicate, fd);
            }
        })
    }
}

/// At the exit of a daemon that took its lock over: removes the pid file if it names this process (the
/// upgrade wrote it, so its inode was not known at start).
pub(super) fn remove_if_ours(path: &Path) {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let Ok(fd) = nix::fcntl::open(path, flags, Mode::empty()) else {
        return;
    };
    let file = File::from(fd);
    if named_pid(path) == Some(std::process::id()) {
        remove_if_names(path, id_of(&file));
    }
}

/// Writes `pid` into the pid file at `path` (absolute) atomically, for `upgrade` once the new daemon is
/// ready: a new file in the same checked directory, `PID\n` in one write, then renamed over the old one,
/// so that a reader sees the old pid or the new one, never an empty or partial file.
#[cfg(all(feature = "control", target_os = "linux"))]
pub(crate) fn write_atomically(path: &Path, pid: u32) -> Result<(), Error> {
    let dir = Dir::of(path).map_err(|(dir, why)| dir_error(path, &dir, why))?;
    let fail = |errno| pid_error(path, errno);
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name_of(path));
    temporary.push(format!(".{}.new", std::process::id()));
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(
        &dir.fd,
        temporary.as_os_str(),
        flags,
        Mode::from_bits_truncate(PID_FILE_MODE),
    )
    .map_err(fail)?;
    let file = File::from(fd);
    let text = format!("{pid}\n");
    let written = (|| {
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(PID_FILE_MODE))?;
        match file.write_at(text.as_bytes(), 0) {
            Ok(n) if n == text.len() => {}
            Ok(_) => return Err(Errno::EFBIG),
            Err(error) => return Err(Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))),
        }
        nix::fcntl::renameat(&dir.fd, temporary.as_os_str(), &dir.fd, name_of(path))
    })();
    if let Err(errno) = written {
        let _ = nix::unistd::unlinkat(
            &dir.fd,
            temporary.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return Err(fail(errno));
    }
    Ok(())
}
