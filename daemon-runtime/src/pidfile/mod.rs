//! The pid file and its lock.
//!
//! The lock lives on a separate file, `<pid_file>.lock`, mode 0600, owned by the user who started the
//! daemon (root): nobody else can open it, so nobody else can hold its lock to block a start, forge the
//! daemon's answers in the record it carries, or change its mode (issue 18.4). The daemon holds its lock
//! through a descriptor opened before any privilege drop, for its whole life, and answers through that
//! descriptor. A pid file unlinked by someone else (systemd removes a failed unit's `PIDFile=`) no longer
//! matters, since the lock file is the truth: who holds it is verified through the kernel (holder.rs),
//! never merely read from the pid file.
//!
//! The pid file is written once, before any privilege drop, and closed: no descriptor that can write it
//! survives the user switch, so the daemon's user can never make root's tools (`start-stop-daemon
//! --pidfile`, systemd's `PIDFile=`) signal a process of its choosing (issue 18.1). What the daemon can
//! no longer remove at its exit, `stop` or the next start removes; a clean exit leaves the lock file
//! empty, which `status` tells from a crash.
//!
//! Both files are opened without following symlinks, without blocking (a FIFO cannot hang the start), and
//! checked on the opened descriptor before anything about them changes.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Pid, Uid};

use crate::error::{Error, Step};
use crate::sys::signal::holding;
pub(crate) use dir::Dir;
#[cfg(all(feature = "control", target_os = "linux"))]
pub(crate) use dir::DirRefusal;
use dir::{dir_error, id_of, name_of, names_in, remove_if_names, remove_if_names_in};

mod dir;
pub(crate) mod handover;
#[cfg(target_os = "linux")]
pub(crate) mod holder;
#[cfg(target_os = "linux")]
pub(crate) mod locks;
pub(crate) mod record;

/// The mode of the pid file whatever the umask: readable by all, writable by its owner only.
const PID_FILE_MODE: libc::mode_t = 0o644;
/// The mode of the lock file: nobody but its owner may open it, so nobody else can hold its lock.
const LOCK_FILE_MODE: libc::mode_t = 0o600;
/// How many times a launch that lost the race for the lock to a holder its pid file does not name looks
/// again before it says "already running" (the holder may be a control action taking the lock for a
/// moment, or a daemon on its way out).
const HOLDER_ATTEMPTS: u32 = 5;

/// The lock file of a pid file: `<pid_file>.lock`.
pub(crate) fn lock_path(pid_file: &Path) -> PathBuf {
    let mut path = OsString::from(pid_file.as_os_str());
    path.push(".lock");
    PathBuf::from(path)
}

/// What the builder keeps when `pid_file()` is set: so that a daemon without a pid file does not link
/// this code.
#[derive(Debug)]
pub(crate) struct Ops {
    /// [`PidFile::acquire`].
    pub(crate) acquire: fn(&Path, u32) -> Result<PidFile, Error>,
    /// [`PidFile::adopt`]: the lock handed over by the daemon this one upgrades.
    pub(crate) adopt: fn(&Path, OwnedFd, u32) -> Result<PidFile, Error>,
    /// [`clean_up`].
    pub(crate) clean_up: fn(&Path) -> bool,
}

/// The pid file functions, for the builder.
pub(crate) static OPS: Ops = Ops {
    acquire: PidFile::acquire,
    adopt: PidFile::adopt,
    clean_up,
};

/// A locked pid file. Dropping it removes the pid file and the lock file (where the paths still name
/// them), then releases the lock; where they cannot be removed (after a chroot, or without write access
/// to their directory once privileges are dropped), the lock file is emptied, which tells `status` that
/// the daemon exited cleanly. Dropped in another process than the one that locked it (a child made with
/// `fork()` that leaves `main`), it changes nothing: the files are the parent daemon's, whose lock still
/// holds.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    /// The pid file's device and inode: it is removed only while its path still names it. `None` for a
    /// daemon that took the lock over in an upgrade: the upgrade wrote its pid file, after this started.
    id: Option<(u64, u64)>,
    /// Declared last: dropped (emptied, removed, then unlocked) after the pid file is gone.
    lock: Lock,
}

impl PidFile {
    /// Locks `<path>.lock`, then opens, checks and writes `pid` into `path` (absolute), and closes it.
    pub(crate) fn acquire(path: &Path, pid: u32) -> Result<PidFile, Error> {
        let dir = Dir::of(path).map_err(|(dir, why)| dir_error(path, &dir, why))?;
        let lock = Lock::acquire(&dir, &lock_path(path), path)?;
        let (fd, created) = open_new_or_existing(&dir, name_of(path), PID_FILE_MODE)
            .map_err(|errno| pid_error(path, errno))?;
        let file = File::from(fd);
        // The pid file is root's (or the starting user's) only, never the daemon's user's: scripts read it
        // as root (`kill $(cat ...)`, start-stop-daemon --pidfile), so a file that user could rewrite would
        // let it have root signal any process (review F8).
        let checked = check(&file, path, Step::PidFile, Rules::PID_FILE)
            .and_then(|()| write_pid(&file, path, pid));
        if let Err(error) = checked {
            if created {
                // Ours: a failed start leaves nothing behind.
                remove_if_names_in(&dir, name_of(path), id_of(&file));
            }
            return Err(error);
        }
        // The descriptor closes here, before any privilege drop (issue 18.1).
        let pid_file = PidFile {
            path: path.to_path_buf(),
            id: Some(id_of(&file)),
            lock,
        };
        handover::running(path, pid, None, &pid_file.lock.file);
        // The record `myapp reload` and `status` read goes into the lock file from now on.
        pid_file.attach_record();
        Ok(pid_file)
    }

    /// Writes the record `myapp reload` and `status` read into the lock file from now on, through a
    /// duplicate of the lock's descriptor, so that it is written without borrowing the lock's; without one
    /// (no descriptor left) there is no record, and `reload` waits in vain: never fail for it.
    pub(crate) fn attach_record(&self) {
        if let Ok(duplicate) = self.lock.file.try_clone() {
            record::attach(duplicate, self.lock.file.as_raw_fd());
        }
    }

    /// The path of the pid file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// `PID\n` in one write: a short write (a tiny `RLIMIT_FSIZE`) is an error, never a truncated pid that
/// could name another process. SIGXFSZ is held back during the write, so the limit fails the start with
/// EFBIG instead of killing the daemon.
fn write_pid(file: &File, path: &Path, pid: u32) -> Result<(), Error> {
    let fail = |errno| pid_error(path, errno);
    nix::sys::stat::fchmod(file, Mode::from_bits_truncate(PID_FILE_MODE)).map_err(fail)?;
    file.set_len(0).map_err(|e| fail(io_errno(&e)))?;
    let text = format!("{pid}\n");
    let written = holding(nix::sys::signal::Signal::SIGXFSZ, || {
        file.write_at(text.as_bytes(), 0)
    })
    .map_err(|e| fail(io_errno(&e)))?;
    if written != text.len() {
        return Err(fail(Errno::EFBIG).with_detail(format!(
            "only {written} of the {} bytes of the pid were written (the file size limit, RLIMIT_FSIZE, is too small)",
            text.len()
        )));
    }
    Ok(())
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if !self.lock.ours() {
            // A forked child: the files and the record are its parent's. Its copies of the descriptors
            // close with it; the lock stays with the parent's descriptor.
            return;
        }
        // No record may be written to the lock file's descriptor once it is closed (right after this).
        record::detach();
        let named_here = handover::named_here();
        // An exit during an upgrade (a crash, or the program's own decision): the new daemon holds the
        // same lock and will be named in the pid file, or `upgrade` cleans up after it failed. Removing
        // the files now would let a second daemon start beside the new one.
        let upgrading = handover::upgrade_running();
        self.lock.taken_over = named_here;
        self.lock.left = upgrading;
        handover::release();
        if (self.lock.adopted && !named_here) || upgrading {
            // A failed upgrade's new daemon (the files are the old one's, which serves on), or an exit
            // during an upgrade.
            return;
        }
        // Removed while still locked, and only if the path still names our file: after a chroot it names
        // something else (or nothing); after an upgrade, the new daemon's.
        match self.id {
            Some(id) => {
                remove_if_names(&self.path, id);
            }
            None => handover::remove_if_ours(&self.path),
        }
    }
}

/// The locked lock file.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    file: File,
    /// The process that locked it: only that one removes the files.
    owner: u32,
    /// Taken over from the daemon an upgrade replaces: until the pid file names this process, the files
    /// are that daemon's, which still holds the same lock (a failed upgrade leaves them to it).
    adopted: bool,
    /// For an adopted lock: the pid file named this process when it was released.
    taken_over: bool,
    /// Released while an `upgrade` was in progress: the files are left to the new daemon, or to
    /// `upgrade`'s clean-up if the new daemon fails.
    left: bool,
}

impl Lock {
    fn acquire(dir: &Dir, path: &Path, pid_file: &Path) -> Result<Lock, Error> {
        let mut attempts = 0;
        let file = loop {
            let (fd, _) = open_new_or_existing(dir, name_of(path), LOCK_FILE_MODE)
                .map_err(|errno| lock_error(path, errno))?;
            let file = File::from(fd);
            check(&file, path, Step::LockFile, Rules::LOCK_FILE)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    attempts += 1;
                    let holder = running_daemon(&file, path, pid_file);
                    // A holder the pid file names is the daemon. Any other is looked at again: a daemon
                    // on its way out (it removes its pid file, then its lock file, then lets go of the
                    // lock), or someone the files do not name (a control action taking the lock for a
                    // moment: `status`, `stop`'s clean-up).
                    if attempts >= HOLDER_ATTEMPTS
                        || holder.is_some_and(|pid| pid_file_names(pid_file, pid))
                    {
                        return Err(already_running(path, holder));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10 * u64::from(attempts)));
                    continue;
                }
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(lock_error(path, io_errno(&error)));
                }
            }
            // The previous holder may have removed the path between our open and our lock: then we hold a
            // lock on a file nobody else can find, and must start again on the file the path names now.
            if names_in(dir, name_of(path), id_of(&file)) {
                break file;
            }
        };
        Ok(Lock {
            path: path.to_path_buf(),
            file,
            owner: std::process::id(),
            adopted: false,
            taken_over: false,
            left: false,
        })
    }

    /// Whether this process is the one that locked the file (not a child forked since).
    fn ours(&self) -> bool {
        std::process::id() == self.owner
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still locked here; the lock goes when `file` closes, right after. A daemon an upgrade replaced
        // leaves both files to its successor, which holds the same lock.
        if self.ours()
            && !self.left
            && !handover::superseded()
            && (!self.adopted || self.taken_over)
        {
            // Empty first: where the path cannot be removed, an empty lock file nobody holds is what a
            // clean exit leaves (`status` says "not running", not "dead").
            let _ = self.file.set_len(0);
            remove_if_names(&self.path, id_of(&self.file));
        }
    }
}

/// The daemon that holds the lock of `lock_file` (open as `file`), as its own files name it (the record's
/// pid, then the pid file's) and its own descriptors confirm (see holder.rs). `None` when the holder is
/// not the daemon they name, or cannot be seen.
#[cfg(target_os = "linux")]
fn running_daemon(file: &File, lock_file: &Path, pid_file: &Path) -> Option<Pid> {
    let lock = holder::pin_open(file, lock_file).ok()?;
    let deadline = std::time::Instant::now() + holder::DEADLINE;
    [
        holder::record_of(&lock),
        holder::pid_file_pid(pid_file).map(|pid| (pid, None)),
    ]
    .into_iter()
    .flatten()
    .find(|(pid, fd)| holder::verify(*pid, &lock, *fd, deadline) == Ok(holder::Verdict::Holds))
    .map(|(pid, _)| Pid::from_raw(pid))
}

/// Whether the pid file names `pid` (a daemon on its way out has removed it already).
#[cfg(target_os = "linux")]
fn pid_file_names(pid_file: &Path, pid: Pid) -> bool {
    holder::pid_file_pid(pid_file) == Some(pid.as_raw())
}

/// Without /proc the holder is not known.
#[cfg(not(target_os = "linux"))]
fn pid_file_names(_pid_file: &Path, _pid: Pid) -> bool {
    true
}

/// Without /proc the holder is not known.
#[cfg(not(target_os = "linux"))]
fn running_daemon(_file: &File, _lock_file: &Path, _pid_file: &Path) -> Option<Pid> {
    None
}

/// Removes what a daemon that is gone left at `pid_file`: if nobody holds the lock (this process takes it
/// to be sure, so a daemon starting meanwhile is never robbed of its files), the pid file, when it is a
/// regular file of root's or this user's, and the lock file. For the PID 1 init once the program is gone,
/// and for the launcher once a failed daemon is. `false` only when someone holds the lock.
pub(crate) fn clean_up(pid_file: &Path) -> bool {
    let Ok(dir) = Dir::of(pid_file) else {
        return true;
    };
    let lock_path = lock_path(pid_file);
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let Ok(fd) = nix::fcntl::openat(&dir.fd, name_of(&lock_path), flags, Mode::empty()) else {
        return true;
    };
    let file = File::from(fd);
    if check(&file, &lock_path, Step::LockFile, Rules::LOCK_FILE).is_err() {
        return true;
    }
    match file.try_lock() {
        Ok(()) => {
            remove_left_files(&dir, pid_file, &file);
            true
        }
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(_)) => true,
    }
}

/// Removes, in `dir`, the lock file and the pid file a daemon that is gone left, while the caller holds
/// the lock of `locked` exclusively (two removals at once could unlink a file a new daemon created in
/// between: one checks the name, the other unlinks it, a start creates it again, the first unlinks the
/// new one). Only if the lock file's path still names `locked`: a lock on an inode that is no
/// longer the lock file proves nothing about a daemon that started since (it locked the new file, and
/// wrote the pid file), so then nothing is touched. The pid file goes only if it is a regular file of
/// root's or this user's (a symlink is never followed).
pub(crate) fn remove_left_files(dir: &Dir, pid_file: &Path, locked: &File) {
    let lock_name = lock_path(pid_file);
    let lock_name = name_of(&lock_name);
    if !names_in(dir, lock_name, id_of(locked)) {
        return;
    }
    let pid_name = name_of(pid_file);
    if let Ok(stat) =
        nix::sys::stat::fstatat(&dir.fd, pid_name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        let owner_ok = stat.st_uid == 0 || stat.st_uid == Uid::effective().as_raw();
        if stat.st_mode & libc::S_IFMT == libc::S_IFREG && owner_ok {
            let _ =
                nix::unistd::unlinkat(&dir.fd, pid_name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
    remove_if_names_in(dir, lock_name, id_of(locked));
}

/// What a file must look like on its descriptor before anything about it changes.
#[derive(Clone, Copy)]
struct Rules {
    /// Permission bits that must all be clear.
    forbidden_mode: u32,
    why_mode: &'static str,
}

impl Rules {
    const PID_FILE: Rules = Rules {
        forbidden_mode: 0o022,
        why_mode: "it is group- or world-writable, so another user could rewrite it",
    };
    const LOCK_FILE: Rules = Rules {
        forbidden_mode: 0o077,
        why_mode: "it is open to its group or to others, who could hold its lock and block every start",
    };
}

/// Refuses anything but a regular file with one link, owned by root or this process's effective user,
/// without the permission bits `rules` forbids.
fn check(file: &File, path: &Path, step: Step, rules: Rules) -> Result<(), Error> {
    let metadata = file
        .metadata()
        .map_err(|e| Error::at(step, path, io_errno(&e)))?;
    let refuse = |detail: String| {
        Err(Error::new(step, Some(path.display().to_string()), None).with_detail(detail))
    };
    let kind = metadata.file_type();
    if !kind.is_file() {
        return refuse(format!(
            "it is {}, not a regular file; it was left as it is",
            describe_type(kind)
        ));
    }
    let euid = Uid::effective();
    if metadata.uid() != 0 && metadata.uid() != euid.as_raw() {
        let who = if euid.is_root() {
            "root".to_string()
        } else {
            format!("root or uid {euid}")
        };
        return refuse(format!(
            "it is owned by uid {}, not by {who}, so that user could rewrite it",
            metadata.uid()
        ));
    }
    if metadata.mode() & rules.forbidden_mode != 0 {
        return refuse(format!(
            "mode {:#o}: {}",
            metadata.mode() & 0o7777,
            rules.why_mode
        ));
    }
    if metadata.nlink() != 1 {
        return refuse(format!(
            "it has {} hard links, so writing it would change another file too",
            metadata.nlink()
        ));
    }
    Ok(())
}

fn describe_type(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` read-write without following a symlink or blocking, creating it with `mode` if missing;
/// says whether this call created it. Above stdio, close-on-exec.
///
/// An existing file is first looked at without being opened for I/O (`O_PATH` on Linux): opening a device
/// can itself change it (a tape rewinds, a modem line drops), so anything but a regular file comes back as
/// that `O_PATH` descriptor, for the caller's checks to refuse by its type. A regular file is then opened
/// read-write and must be the very inode looked at.
fn open_new_or_existing(
    dir: &Dir,
    name: &std::ffi::OsStr,
    mode: libc::mode_t,
) -> Result<(OwnedFd, bool), Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    loop {
        match nix::fcntl::openat(
            &dir.fd,
            name,
            flags | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(fd) => return Ok((crate::sys::fd::above_stdio(fd)?, true)),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(errno),
        }
        let looked_at = match look_at(dir, name) {
            Ok(Some(Look::Other(fd))) => return Ok((crate::sys::fd::above_stdio(fd)?, false)),
            Ok(Some(Look::Regular(dev, ino))) => Some((dev, ino)),
            Ok(None) => None,
            // Removed between the two opens: try again.
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno),
        };
        match nix::fcntl::openat(&dir.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let stat = nix::sys::stat::fstat(&fd)?;
                if looked_at.is_none_or(|seen| seen == (stat.st_dev, stat.st_ino)) {
                    return Ok((crate::sys::fd::above_stdio(fd)?, false));
                }
                // Replaced since we looked: look again.
            }
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
    }
}

/// What an existing path names, seen without opening it for I/O.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
enum Look {
    /// A regular file: its device and inode.
    Regular(libc::dev_t, libc::ino_t),
    /// Anything else, as an `O_PATH` descriptor (enough for `fstat`, useless for I/O).
    Other(OwnedFd),
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn look_at(dir: &Dir, name: &std::ffi::OsStr) -> Result<Option<Look>, Errno> {
    let fd = nix::fcntl::openat(
        &dir.fd,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = nix::sys::stat::fstat(&fd)?;
    Ok(Some(match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => Look::Regular(stat.st_dev, stat.st_ino),
        // O_PATH|O_NOFOLLOW opens the link itself: refuse it as the plain open would.
        libc::S_IFLNK => return Err(Errno::ELOOP),
        _ => Look::Other(fd),
    }))
}

/// Without `O_PATH`, the read-write open (non-blocking) is the first look.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn look_at(_dir: &Dir, _name: &std::ffi::OsStr) -> Result<Option<Look>, Errno> {
    Ok(None)
}

fn pid_error(path: &Path, errno: Errno) -> Error {
    symlink_detail(Error::at(Step::PidFile, path, errno), errno, "a pid file")
}

fn lock_error(path: &Path, errno: Errno) -> Error {
    symlink_detail(Error::at(Step::LockFile, path, errno), errno, "a lock file")
}

fn symlink_detail(error: Error, errno: Errno, what: &str) -> Error {
    if errno == Errno::ELOOP {
        error.with_detail(format!("it is a symbolic link, which {what} must not be"))
    } else {
        error
    }
}

/// The error for a lock another live process holds, naming that process when the kernel does.
fn already_running(lock_path: &Path, pid: Option<Pid>) -> Error {
    Error::new(
        Step::AlreadyRunning,
        pid.map(|pid| format!("(pid {pid})")),
        None,
    )
    .with_detail(format!(
        "{} is locked by the running daemon",
        lock_path.display()
    ))
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed afterwards.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir()
                .join(format!("daemon-rt-pidfile-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn written_locked_closed_and_removed() {
        let dir = Dir::new("basic");
        let path = dir.0.join("app.pid");
        std::fs::write(&path, "stale\n").unwrap();
        let pid = std::process::id();
        let pid_file = PidFile::acquire(&path, pid).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
        let lock = lock_path(&path);
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        // The record names the daemon's pid.
        let record = std::fs::read_to_string(&lock).unwrap();
        assert!(record.contains(&format!("\npid {pid}\n")), "{record}");
        // No descriptor of the pid file is kept (issue 18.1).
        #[cfg(target_os = "linux")]
        assert!(
            std::fs::read_dir("/proc/self/fd").unwrap().all(|entry| {
                std::fs::read_link(entry.unwrap().path()).ok().as_deref() != Some(path.as_path())
            }),
            "the pid file is still open"
        );
        // flock locks belong to the open file: a second open, even in this process, finds it locked, and
        // names the holder the files name once its own descriptors confirm it.
        let error = PidFile::acquire(&path, 1).unwrap_err();
        assert_eq!(error.step(), Step::AlreadyRunning);
        #[cfg(target_os = "linux")]
        assert_eq!(error.subject(), Some(format!("(pid {pid})").as_str()));
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            content,
            format!("{pid}\n"),
            "the holder's file is untouched"
        );
        drop(pid_file);
        assert!(!path.exists());
        assert!(!lock.exists());
    }

    #[test]
    fn where_the_paths_name_other_files_they_are_left_alone_and_the_lock_file_is_emptied() {
        let dir = Dir::new("replaced");
        let path = dir.0.join("app.pid");
        let pid_file = PidFile::acquire(&path, 4242).unwrap();
        // Someone (or a chroot's view of the same paths) puts other files there.
        for (name, moved) in [(path.clone(), "ours"), (lock_path(&path), "ours.lock")] {
            let other = dir.0.join("other");
            std::fs::write(&other, "7\n").unwrap();
            std::fs::rename(&name, dir.0.join(moved)).unwrap();
            std::fs::rename(&other, &name).unwrap();
        }
        drop(pid_file);
        for name in [path.clone(), lock_path(&path)] {
            assert_eq!(
                std::fs::read_to_string(&name).unwrap(),
                "7\n",
                "another file was removed or changed"
            );
        }
        assert_eq!(
            std::fs::read_to_string(dir.0.join("ours.lock")).unwrap(),
            "",
            "the lock file was not emptied: a clean exit must be told from a crash"
        );
    }

    #[test]
    fn clean_up_removes_what_nobody_holds() {
        let dir = Dir::new("clean-up");
        let path = dir.0.join("app.pid");
        let pid_file = PidFile::acquire(&path, 4242).unwrap();
        clean_up(&path);
        assert!(path.exists() && lock_path(&path).exists(), "held: kept");
        // A daemon that cannot remove its files (here: it is killed) leaves them.
        std::mem::forget(pid_file);
        let dir2 = Dir::new("clean-up-left");
        let left = dir2.0.join("app.pid");
        std::fs::write(&left, "4242\n").unwrap();
        std::fs::write(lock_path(&left), "").unwrap();
        std::fs::set_permissions(
            lock_path(&left),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        clean_up(&left);
        assert!(!left.exists() && !lock_path(&left).exists());
    }

    #[test]
    fn a_symlink_is_refused() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("target");
        std::fs::write(&target, "keep\n").unwrap();
        let path = dir.0.join("app.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = PidFile::acquire(&path, 1).unwrap_err();
        assert_eq!(
            error.os_error().and_then(|e| e.raw_os_error()),
            Some(libc::ELOOP)
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        assert!(
            !lock_path(&path).exists(),
            "a failed start leaves no lock file"
        );
    }
}
