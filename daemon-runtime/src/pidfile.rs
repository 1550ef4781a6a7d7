//! The pid file and its lock.
//!
//! The lock lives on a separate file, `<pid_file>.lock`, mode 0600: a user who may only read the pid file
//! (0644) cannot open the lock file, so cannot block a start with a shared `flock`; and a pid file
//! unlinked by someone else (systemd removes a failed unit's `PIDFile=`) no longer matters, since the lock
//! file is the truth. Who holds the lock is read from the kernel (`/proc/locks`), never from the pid file.
//!
//! Both files are opened without following symlinks, without blocking (a FIFO cannot hang the start), and
//! checked on the opened descriptor before anything about them changes.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, Uid};

use crate::error::{Error, Step};
use crate::{fds, sigblock};

/// The mode of the pid file whatever the umask: readable by all, writable by its owner only.
const PID_FILE_MODE: libc::mode_t = 0o644;
/// The mode of the lock file: nobody but its owner may open it, so nobody else can hold its lock.
const LOCK_FILE_MODE: libc::mode_t = 0o600;
/// How many times a launch that lost the race for the lock looks again for the holder before it says
/// "already running" without a pid (the holder may exit between our attempt and the lookup).
const HOLDER_ATTEMPTS: u32 = 3;

/// The lock file of a pid file: `<pid_file>.lock`.
pub(crate) fn lock_path(pid_file: &Path) -> PathBuf {
    let mut path = OsString::from(pid_file.as_os_str());
    path.push(".lock");
    PathBuf::from(path)
}

/// The process that holds the lock of `pid_file` (the daemon), read from the kernel's lock table: never a
/// pid merely written in a file. `Ok(None)` when nobody holds it (or the holder is outside this pid
/// namespace). Needs no read permission on either file, so any user may ask.
#[cfg(target_os = "linux")]
pub(crate) fn holder(pid_file: &Path) -> Result<Option<Pid>, Error> {
    use std::os::fd::AsFd;
    let lock_path = lock_path(pid_file);
    // O_PATH: no read permission needed; the descriptor also tells the mount (see `locks::ids`).
    let fd = match open(
        &lock_path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(Error::at(Step::LockFile, &lock_path, errno)),
    };
    let stat =
        nix::sys::stat::fstat(&fd).map_err(|errno| Error::at(Step::LockFile, &lock_path, errno))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    locks::holder(&locks::ids(fd.as_fd(), stat.st_dev, stat.st_ino))
        .map_err(|error| Error::at(Step::LockFile, Path::new(locks::PATH), io_errno(&error)))
}

/// Without a lock table to read, the holder is unknown.
#[cfg(not(target_os = "linux"))]
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn holder(_pid_file: &Path) -> Result<Option<Pid>, Error> {
    Ok(None)
}

/// [`PidFile::acquire`], as the builder keeps it.
pub(crate) type Acquire = fn(&Path, u32, Owners) -> Result<PidFile, Error>;

/// Who may own the pid file and the lock file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owners {
    /// The user the daemon becomes, when it switches (the lock file is given to that user).
    pub(crate) user: Option<Uid>,
}

impl Owners {
    fn allows(self, uid: u32) -> bool {
        uid == 0 || uid == Uid::effective().as_raw() || self.user.is_some_and(|u| u.as_raw() == uid)
    }

    fn describe(self) -> String {
        let mut who = vec!["root".to_string()];
        let euid = Uid::effective();
        if !euid.is_root() {
            who.push(format!("uid {euid}"));
        }
        if let Some(user) = self.user.filter(|u| !u.is_root() && *u != euid) {
            who.push(format!("uid {user}"));
        }
        who.join(" or ")
    }
}

/// A locked pid file. Dropping it removes the pid file and the lock file (where the paths still name
/// them), then releases the lock; dropped in another process than the one that locked it (a child made
/// with `fork()` that leaves `main`), it removes nothing: the files are the parent daemon's, whose lock
/// still holds.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    /// The pid file, open for the daemon's life so that it can be emptied where it cannot be removed.
    file: File,
    /// Declared last: dropped (removed, then unlocked) after the pid file is gone.
    lock: Lock,
}

impl PidFile {
    /// Locks `<path>.lock`, then opens, checks and writes `pid` into `path` (absolute).
    pub(crate) fn acquire(path: &Path, pid: u32, owners: Owners) -> Result<PidFile, Error> {
        let lock = Lock::acquire(&lock_path(path), owners, path)?;
        let (fd, created) =
            open_new_or_existing(path, PID_FILE_MODE).map_err(|errno| pid_error(path, errno))?;
        let file = File::from(fd);
        // The pid file is root's (or the starting user's) only, never the daemon's user's: scripts read it
        // as root (`kill $(cat ...)`, start-stop-daemon --pidfile), so a file that user could rewrite would
        // let it have root signal any process (review F8). Only the lock file is given to that user.
        let pid_file_owners = Owners { user: None };
        if let Err(error) = check(&file, path, Step::PidFile, pid_file_owners, Rules::PID_FILE) {
            if created {
                // Ours and still empty: a failed start leaves nothing behind.
                remove_if_names(path, &file);
            }
            return Err(error);
        }
        // From here on the file is ours: dropping `pid_file` on an error removes it.
        let pid_file = PidFile {
            path: path.to_path_buf(),
            file,
            lock,
        };
        pid_file.write(pid)?;
        // The reload records `myapp reload` waits on go into the lock file from now on.
        crate::control::record::attach(pid_file.lock.file.as_raw_fd());
        Ok(pid_file)
    }

    /// `PID\n` in one write: a short write (a tiny `RLIMIT_FSIZE`) is an error, never a truncated pid that
    /// could name another process. SIGXFSZ is held back during the write, so the limit fails the start
    /// with EFBIG instead of killing the daemon.
    fn write(&self, pid: u32) -> Result<(), Error> {
        let fail = |errno| pid_error(&self.path, errno);
        nix::sys::stat::fchmod(&self.file, Mode::from_bits_truncate(PID_FILE_MODE))
            .map_err(fail)?;
        self.file.set_len(0).map_err(|e| fail(io_errno(&e)))?;
        let text = format!("{pid}\n");
        let written = sigblock::holding(nix::sys::signal::Signal::SIGXFSZ, || {
            self.file.write_at(text.as_bytes(), 0)
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

    /// The path of the pid file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if !self.lock.ours() {
            // A forked child: the files and the record are its parent's. Its copies of the descriptors
            // close with it; the lock stays with the parent's descriptor.
            return;
        }
        // No record may be written to the lock file's descriptor once it is closed (right after this).
        crate::control::record::detach();
        // Removed while still locked, and only if the path still names our file: after a chroot it names
        // something else (or nothing). Where it cannot be removed (after a chroot, or without write access
        // to the directory once privileges are dropped), it is emptied through the descriptor opened
        // before, so that no stale pid is left to match a recycled process.
        if !remove_if_names(&self.path, &self.file) {
            let _ = self.file.set_len(0);
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
}

impl Lock {
    fn acquire(path: &Path, owners: Owners, pid_file: &Path) -> Result<Lock, Error> {
        let mut attempts = 0;
        let file = loop {
            let (fd, _) = open_new_or_existing(path, LOCK_FILE_MODE)
                .map_err(|errno| lock_error(path, errno))?;
            let file = File::from(fd);
            check(&file, path, Step::LockFile, owners, Rules::LOCK_FILE)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    attempts += 1;
                    match holder(pid_file) {
                        Ok(None) if attempts < HOLDER_ATTEMPTS => continue,
                        Ok(pid) => return Err(already_running(path, pid)),
                        Err(_) => return Err(already_running(path, None)),
                    }
                }
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(lock_error(path, io_errno(&error)))
                }
            }
            // The previous holder may have removed the path between our open and our lock: then we hold a
            // lock on a file nobody else can find, and must start again on the file the path names now.
            if names(path, &file) {
                break file;
            }
        };
        let lock = Lock {
            path: path.to_path_buf(),
            file,
            owner: std::process::id(),
        };
        // The daemon's user may run `stop`, `reload` and `status` on its own daemon: give it the lock file.
        if let Some(user) = owners.user {
            if lock.file.metadata().map(|m| m.uid()).ok() != Some(user.as_raw()) {
                nix::unistd::fchown(&lock.file, Some(user), None)
                    .map_err(|errno| lock_error(path, errno))?;
            }
        }
        Ok(lock)
    }
}

impl Lock {
    /// Whether this process is the one that locked the file (not a child forked since).
    fn ours(&self) -> bool {
        std::process::id() == self.owner
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still locked here; the lock goes when `file` closes, right after.
        if self.ours() {
            remove_if_names(&self.path, &self.file);
        }
    }
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
        why_mode:
            "it is open to its group or to others, who could hold its lock and block every start",
    };
}

/// Refuses anything but a regular file with one link, owned by root, this process's effective user or
/// the daemon's user, without the permission bits `rules` forbids.
fn check(file: &File, path: &Path, step: Step, owners: Owners, rules: Rules) -> Result<(), Error> {
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
    if !owners.allows(metadata.uid()) {
        return refuse(format!(
            "it is owned by uid {}, not by {}, so that user could rewrite it",
            metadata.uid(),
            owners.describe()
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
fn open_new_or_existing(path: &Path, mode: libc::mode_t) -> Result<(OwnedFd, bool), Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    loop {
        match open(
            path,
            flags | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(fd) => return Ok((fds::above_stdio(fd)?, true)),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(errno),
        }
        let looked_at = match look_at(path) {
            Ok(Some(Look::Other(fd))) => return Ok((fds::above_stdio(fd)?, false)),
            Ok(Some(Look::Regular(dev, ino))) => Some((dev, ino)),
            Ok(None) => None,
            // Removed between the two opens: try again.
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno),
        };
        match open(path, flags, Mode::empty()) {
            Ok(fd) => {
                let stat = nix::sys::stat::fstat(&fd)?;
                if looked_at.is_none_or(|seen| seen == (stat.st_dev, stat.st_ino)) {
                    return Ok((fds::above_stdio(fd)?, false));
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
fn look_at(path: &Path) -> Result<Option<Look>, Errno> {
    let fd = open(
        path,
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
fn look_at(_path: &Path) -> Result<Option<Look>, Errno> {
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

/// Whether `path` (not followed if it is a symlink) is the file open as `file`.
fn names(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

/// Removes `path` if it still names `file`; whether it did.
fn remove_if_names(path: &Path, file: &File) -> bool {
    names(path, file) && std::fs::remove_file(path).is_ok()
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// The kernel's table of file locks.
#[cfg(target_os = "linux")]
pub(crate) mod locks {
    use std::io::BufRead;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::unistd::Pid;

    pub(crate) const PATH: &str = "/proc/locks";

    /// How `/proc/locks` (and the `lock:` lines of fdinfo) may name the file open as `fd`, whose `stat`
    /// gave `dev` and `ino`: `MAJOR:MINOR:INODE`, device numbers in hex.
    ///
    /// The kernel prints the device of the inode's superblock, which is not always `st_dev`: btrfs gives
    /// each subvolume an anonymous device in `st_dev`, and overlayfs reports a layer's device for files
    /// whose layers are on different file systems. The superblock's device is the `maj:min` of the file's
    /// mount in `/proc/self/mountinfo` (found by the `mnt_id` of the descriptor's fdinfo), so both are
    /// candidates; a device number names one file system only, so matching either is exact.
    pub(crate) fn ids(fd: BorrowedFd<'_>, dev: u64, ino: u64) -> Vec<String> {
        let mut ids = vec![id(libc::major(dev), libc::minor(dev), ino)];
        if let Some((major, minor)) = mount_device(fd) {
            let other = id(major, minor, ino);
            if !ids.contains(&other) {
                ids.push(other);
            }
        }
        ids
    }

    fn id(major: u32, minor: u32, ino: u64) -> String {
        format!("{major:02x}:{minor:02x}:{ino}")
    }

    /// The `maj:min` (decimal) of the mount `fd` is on, from `/proc/self/mountinfo`.
    fn mount_device(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
        let mount = info
            .lines()
            .find_map(|line| line.strip_prefix("mnt_id:"))?
            .trim()
            .to_string();
        let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        mount_device_in(&table, &mount)
    }

    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the mount id, its parent's, then
    /// `maj:min`.
    fn mount_device_in(table: &str, mount: &str) -> Option<(u32, u32)> {
        table.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            if fields.next()? != mount {
                return None;
            }
            let (major, minor) = fields.nth(1)?.split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
    }

    /// The pid holding an exclusive `flock` on the file named by one of `ids`, from lines such as
    /// `3: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF` (device numbers in hex; waiters are `->` lines).
    pub(crate) fn holder(ids: &[String]) -> std::io::Result<Option<Pid>> {
        let table = std::io::BufReader::new(std::fs::File::open(PATH)?);
        for line in table.lines() {
            if let Some(pid) = parse(&line?, ids) {
                return Ok(Some(pid));
            }
        }
        Ok(None)
    }

    /// As [`holder`], but the pid as this procfs prints it: 0 or -1 for a holder outside its pid namespace,
    /// which control must tell apart from "nobody holds it".
    pub(crate) fn holder_as_printed(ids: &[String]) -> std::io::Result<Option<i32>> {
        let table = std::fs::read_to_string(PATH)?;
        Ok(table
            .lines()
            .find_map(|line| pid_field(line, ids))
            .and_then(|pid| pid.parse().ok()))
    }

    fn parse(line: &str, ids: &[String]) -> Option<Pid> {
        // A holder outside our pid namespace shows as 0 or -1.
        pid_field(line, ids)?
            .parse::<i32>()
            .ok()
            .filter(|pid| *pid > 0)
            .map(Pid::from_raw)
    }

    /// The pid field of a line that names an exclusive `flock` on the file named by one of `ids`.
    fn pid_field<'a>(line: &'a str, ids: &[String]) -> Option<&'a str> {
        let mut fields = line.split_whitespace().skip(1);
        let [kind, _, mode, pid, file] = std::array::from_fn(|_| fields.next().unwrap_or(""));
        (kind == "FLOCK" && mode == "WRITE" && ids.iter().any(|id| id == file)).then_some(pid)
    }

    #[cfg(test)]
    #[test]
    fn the_superblocks_device_is_the_mounts() {
        let table = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n43 27 0:39 / /tmp/m rw,relatime - btrfs /dev/loop0 rw\n";
        assert_eq!(mount_device_in(table, "43"), Some((0, 39)));
        assert_eq!(mount_device_in(table, "22"), Some((8, 2)));
        assert_eq!(mount_device_in(table, "4"), None);
        // btrfs: stat says 0:28, /proc/locks 00:27 (0:39).
        assert_eq!(id(0, 39, 257), "00:27:257");
        assert_eq!(
            parse(
                "3: FLOCK  ADVISORY  WRITE 18420 00:27:257 0 EOF",
                &[id(0, 28, 257), id(0, 39, 257)]
            ),
            Some(Pid::from_raw(18420))
        );
        // The descriptor of a real file: its mount is found, and st_dev is always a candidate.
        let file = std::fs::File::open("/proc/self/mountinfo").unwrap();
        let stat = nix::sys::stat::fstat(&file).unwrap();
        let ids = ids(std::os::fd::AsFd::as_fd(&file), stat.st_dev, stat.st_ino);
        assert_eq!(
            ids[0],
            id(
                libc::major(stat.st_dev),
                libc::minor(stat.st_dev),
                stat.st_ino
            )
        );
        assert!(mount_device(std::os::fd::AsFd::as_fd(&file)).is_some());
    }

    #[cfg(test)]
    #[test]
    fn lines_of_proc_locks() {
        let want_ids = ["00:2a:77".to_string()];
        let want = &want_ids[..];
        assert_eq!(
            parse("1: FLOCK  ADVISORY  WRITE 4242 00:2a:77 0 EOF", want),
            Some(Pid::from_raw(4242))
        );
        assert_eq!(
            parse("1: FLOCK  ADVISORY  READ 4242 00:2a:77 0 EOF", want),
            None
        );
        assert_eq!(
            parse("1: -> FLOCK  ADVISORY  WRITE 99 00:2a:77 0 EOF", want),
            None
        );
        assert_eq!(
            parse("2: POSIX  ADVISORY  WRITE 4242 00:2a:77 0 EOF", want),
            None
        );
        assert_eq!(
            parse("2: FLOCK  ADVISORY  WRITE 4242 00:2a:770 0 EOF", want),
            None
        );
        assert_eq!(
            parse("2: FLOCK  ADVISORY  WRITE -1 00:2a:77 0 EOF", want),
            None
        );
        assert_eq!(parse("", want), None);
    }
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

    const NOBODY_ELSE: Owners = Owners { user: None };

    #[test]
    fn written_locked_and_removed() {
        let dir = Dir::new("basic");
        let path = dir.0.join("app.pid");
        std::fs::write(&path, "stale\n").unwrap();
        let pid = std::process::id();
        let pid_file = PidFile::acquire(&path, pid, NOBODY_ELSE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
        let lock = lock_path(&path);
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        // flock locks belong to the open file: a second open, even in this process, finds it locked.
        let error = PidFile::acquire(&path, 1, NOBODY_ELSE).unwrap_err();
        assert_eq!(error.step(), Step::AlreadyRunning);
        #[cfg(target_os = "linux")]
        assert_eq!(error.subject(), Some(format!("(pid {pid})").as_str()));
        assert_eq!(
            holder(&path).unwrap().map(Pid::as_raw),
            cfg!(target_os = "linux").then_some(pid.cast_signed())
        );
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            content,
            format!("{pid}\n"),
            "the holder's file is untouched"
        );
        drop(pid_file);
        assert!(!path.exists());
        assert!(!lock.exists());
        assert_eq!(holder(&path).unwrap(), None);
    }

    #[test]
    fn a_path_that_names_another_file_is_left_alone_and_ours_is_emptied() {
        let dir = Dir::new("replaced");
        let path = dir.0.join("app.pid");
        let pid_file = PidFile::acquire(&path, 4242, NOBODY_ELSE).unwrap();
        // Someone (or a chroot's view of the same path) puts another file there.
        let other = dir.0.join("other");
        std::fs::write(&other, "7\n").unwrap();
        let moved = dir.0.join("ours");
        std::fs::rename(&path, &moved).unwrap();
        std::fs::rename(&other, &path).unwrap();
        drop(pid_file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "7\n",
            "another file was removed or changed"
        );
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            "",
            "our file was not emptied"
        );
    }

    #[test]
    fn a_symlink_is_refused() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("target");
        std::fs::write(&target, "keep\n").unwrap();
        let path = dir.0.join("app.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = PidFile::acquire(&path, 1, NOBODY_ELSE).unwrap_err();
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
