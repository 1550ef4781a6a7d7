//! File descriptors: closing every inherited one (but those kept), and pointing stdio at /dev/null or files.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Step};

pub(crate) use scope::Scope;

mod scope {
    /// Which fds above 2 may be closed: only those the process inherited (safe), or every one, which only
    /// the `unsafe` [`Scope::all`] makes, since closing an fd that a live object owns breaks that object
    /// (a later write through a `File` could reach whatever file gets the number next).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Scope {
        // Private, and in its own module: nothing else can make a `Scope` that closes every fd.
        every: bool,
    }

    impl Scope {
        /// Only those without close-on-exec, which the process inherited across `exec`. Rust opens every fd
        /// close-on-exec, so a `File` or socket the program opened before `Daemon::start` stays open and
        /// owned.
        pub(crate) const INHERITED: Scope = Scope { every: false };

        /// Every fd above 2 but those kept: for `#[daemon]` on the first call of a binary's root `main`,
        /// before its body.
        ///
        /// # Safety
        ///
        /// When the `Daemon` that carries this scope starts, no object in the process may own an fd above 2
        /// that is not among its kept fds (`keep_fds`): each of those is closed, and its owner would then
        /// act on a number that the daemon's next `open` reuses.
        pub(crate) const unsafe fn all() -> Scope {
            Scope { every: true }
        }

        /// Whether every fd (but those kept) may be closed.
        pub(crate) fn is_all(self) -> bool {
            self.every
        }
    }
}

/// Above this many slots in the fd table, listing the open fds is cheaper than `close_range`, whose cost
/// grows with the table (measured on Linux 6.18: 1 µs against 4.5 µs at 256 slots, 9 against 8 at 4096,
/// 119 against 66 at 32768).
#[cfg(target_os = "linux")]
const CLOSE_RANGE_MAX_TABLE: u64 = 4096;

/// Whether the fd table is known to be small without reading /proc/self/status: the table grows with the
/// highest fd open, and a soft `RLIMIT_NOFILE` of at most [`CLOSE_RANGE_MAX_TABLE`] keeps the process from
/// opening any higher (an fd inherited from above the limit makes `close_range` slower, never wrong); or
/// no fd above 2 is open at all. Elsewhere there is no `close_range`, and no answer.
#[cfg(target_os = "linux")]
pub(crate) fn table_is_small() -> bool {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .is_ok_and(|(soft, _)| soft <= CLOSE_RANGE_MAX_TABLE)
        || only_stdio_open()
}

/// Whether no fd above 2 is open: the size of `/proc/self/fd` (checked to be procfs) is the number of open
/// fds (Linux 6.2+; 0 before, which proves nothing), and it equals the number of 0, 1 and 2 that are open.
/// Five cheap system calls, where having the kernel print /proc/self/status costs about 20 µs: the usual
/// start under a high fd limit (a container's 1048576, systemd's 524288 hard limit raised) has nothing to
/// close.
#[cfg(target_os = "linux")]
fn only_stdio_open() -> bool {
    let procfs = nix::sys::statfs::statfs("/proc/self/fd")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    let open = match nix::sys::stat::stat("/proc/self/fd") {
        Ok(st) if procfs && st.st_size > 0 => st.st_size,
        _ => return false,
    };
    // SAFETY: F_GETFD only reads a descriptor's flags; on a number that is not open it returns EBADF.
    let stdio = (0..=2)
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .count();
    usize::try_from(open) == Ok(stdio)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn table_is_small() -> bool {
    false
}

/// Closes the fds above 2 that `scope` allows, except those in `keep`, whatever their numbers.
/// `fd_table` is the size of the process's fd table, when known (`FDSize` in /proc/self/status).
///
/// [`Scope::all`] on Linux: `close_range(2)` over the gaps between the kept fds (one system call when
/// nothing is kept), unless the fd table is large. Otherwise, or on kernels before 5.9: list the open fds
/// (`/proc/self/fd`, `/dev/fd`) and close those. Last resort: every number up to the hard `RLIMIT_NOFILE`.
pub(crate) fn close_inherited(
    keep: &[RawFd],
    scope: Scope,
    fd_table: Option<u64>,
) -> Result<(), Error> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    #[cfg(not(target_os = "linux"))]
    let _ = fd_table; // only Linux has close_range
    #[cfg(target_os = "linux")]
    if scope.is_all() && fd_table.is_none_or(|slots| slots <= CLOSE_RANGE_MAX_TABLE) {
        match close_ranges(&keep) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOSYS | Errno::EINVAL | Errno::EPERM) => {}
            Err(errno) => return Err(Error::os(Step::CloseFds, None, errno)),
        }
    }
    if close_listed(&keep, scope).is_some() {
        return Ok(());
    }
    close_loop(&keep, scope)
}

#[cfg(target_os = "linux")]
fn close_ranges(keep: &[RawFd]) -> Result<(), Errno> {
    let mut low: u32 = 3;
    for &fd in keep {
        // Kept fds are above 2 (filtered by the caller), so the conversion is exact.
        let fd = fd.unsigned_abs();
        if fd > low {
            close_range(low, fd - 1)?;
        }
        low = fd + 1;
    }
    close_range(low, u32::MAX)
}

#[cfg(target_os = "linux")]
fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range(2) takes integers and touches no memory of ours. It runs only for `Scope::all`:
    // `#[daemon]` on the first call of a binary's root `main`, before its body, when no Rust object owns
    // an fd above 2 (see `__private::start`); the runtime opens its own fds afterwards.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    Errno::result(result).map(drop)
}

/// Closes the listed open fds that `scope` allows; `None` when there is no listing to read.
fn close_listed(keep: &[RawFd], scope: Scope) -> Option<()> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    let entries = std::fs::read_dir(dir).ok()?;
    let open: Vec<RawFd> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && keep.binary_search(fd).is_err())
        .collect();
    // A /dev/fd that lists only 0, 1 and 2 whatever is open (FreeBSD without fdescfs) proves nothing.
    if open.is_empty() && !cfg!(target_os = "linux") {
        return None;
    }
    // The listing's own fd is in `open` too; it was closed when `entries` was dropped (EBADF is fine).
    for fd in open {
        close_if_allowed(fd, scope);
    }
    Some(())
}

/// The classic method: every number up to the hard limit.
fn close_loop(keep: &[RawFd], scope: Scope) -> Result<(), Error> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|errno| Error::os(Step::CloseFds, None, errno))?;
    let last = if hard == nix::sys::resource::RLIM_INFINITY {
        1 << 20
    } else {
        RawFd::try_from(hard).unwrap_or(RawFd::MAX)
    };
    for fd in 3..last {
        if keep.binary_search(&fd).is_err() {
            close_if_allowed(fd, scope);
        }
    }
    Ok(())
}

/// Closes `fd` if `scope` allows: always for [`Scope::all`], only without close-on-exec for
/// [`Scope::INHERITED`].
fn close_if_allowed(fd: RawFd, scope: Scope) {
    if !scope.is_all() {
        // SAFETY: F_GETFD only reads the descriptor's flags; on a number that is not open it returns EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            return;
        }
    }
    // SAFETY: nothing in this process owns `fd`. With `Scope::all` no fd is owned yet (its contract). With
    // `Scope::INHERITED` it lacks close-on-exec, so it came across `exec` (Rust opens every fd close-on-exec)
    // or the program made it inheritable on purpose, and `Daemon::start` documents that such fds are closed
    // unless kept. Closing a number that is not open only returns EBADF.
    unsafe { libc::close(fd) };
}

/// A pipe whose ends are close-on-exec and above 2 (with 0, 1 or 2 closed at launch, an end could land
/// there, where the daemon's `dup2` onto stdio would replace it).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    // std's pipe is close-on-exec on every platform (pipe2 where it exists).
    let (read_end, write_end) = std::io::pipe().map_err(|e| io_errno(&e))?;
    Ok((
        above_stdio(read_end.into())?,
        above_stdio(write_end.into())?,
    ))
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// Moves `fd` above 2 when it landed on 0, 1 or 2 (the launcher ran with some of them closed), so that the
/// `dup2` onto stdio cannot replace it. No system call in the usual case.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raised = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raised) })
}

/// A log file as [`redirect_stdio`] opened it: the file, and the directory and name the checked walk of
/// its path ended at (a reopen works from those, never from the path again: review F4, F14).
#[derive(Debug)]
pub(crate) struct LogFile {
    /// The open file (also `dup2`ed onto fd 1 or 2).
    pub(crate) file: OwnedFd,
    /// The directory the walk ended in (`O_PATH` on Linux).
    pub(crate) dir: OwnedFd,
    /// The file's name in `dir` (the last component, after any symlink was followed).
    pub(crate) name: std::ffi::OsString,
    /// This open created the file (`O_CREAT|O_EXCL` succeeded), as opposed to opening one that existed.
    pub(crate) created: bool,
}

/// The log files of [`redirect_stdio`]; `stderr` is `None` when it shares stdout's file.
#[derive(Debug, Default)]
pub(crate) struct LogFiles {
    pub(crate) stdout: Option<LogFile>,
    pub(crate) stderr: Option<LogFile>,
}

/// The opener where none was set: refuses the path (see `redirect_stdio`).
const OPEN_NOTHING: OpenLog = |path, step| Err(Error::at(step, path, nix::errno::Errno::EINVAL));

/// How a log file is opened ([`open_log`]), as the builder keeps it: set by `stdout()` and `stderr()`, so
/// that a daemon without log files does not link that code.
pub(crate) type OpenLog = fn(&Path, Step) -> Result<LogFile, Error>;

/// [`open_log`], for the builder.
pub(crate) const OPEN_LOG: OpenLog = open_log;

/// Points stdout and stderr at the given files (appended to, created 0o640 under the caller's umask),
/// each opened with `open_log` (given with any path); when `detached`, also stdin, and stdout or stderr
/// without a file, at /dev/null (in the foreground those stay as they are: the terminal, or systemd's
/// journal). The targets are opened first, then `dup2`ed onto 0, 1 and 2, which are never closed first,
/// so no other open can take their numbers in between. Returns the log files opened, for
/// `logs::remember`.
pub(crate) fn redirect_stdio(
    stdout: Option<&Path>,
    stderr: Option<&Path>,
    open_log: Option<OpenLog>,
    detached: bool,
) -> Result<LogFiles, Error> {
    // The builder sets the opener with either path, so a path without one is never seen (and would fail
    // the start, not be ignored).
    let open_log = open_log.unwrap_or(OPEN_NOTHING);
    let null = if detached { Some(open_null()?) } else { None };
    let mut files = LogFiles::default();
    let removing = |files: LogFiles, error: Error| {
        // A file this start created goes when the start fails (review F15).
        for file in [files.stdout, files.stderr].into_iter().flatten() {
            remove_created(&file);
        }
        error
    };
    if let Some(path) = stdout {
        files.stdout = Some(open_log(path, Step::Stdout)?);
    }
    // stderr to the same path as stdout shares stdout's open file, so their lines interleave in order.
    let shared = stderr.is_some() && stderr == stdout;
    if let Some(path) = stderr.filter(|_| !shared) {
        match open_log(path, Step::Stderr) {
            Ok(file) => files.stderr = Some(file),
            Err(error) => return Err(removing(files, error)),
        }
    }
    let out = files.stdout.as_ref().map(|f| &f.file).or(null.as_ref());
    let err = match &files.stderr {
        Some(log) => Some(&log.file),
        None if shared => out,
        None => null.as_ref(),
    };
    // dup2 replaces 0, 1 and 2 atomically; no Rust object owns them (std's handles borrow them by number).
    let fail = |errno| Error::os(Step::Stdio, None, errno);
    let result = null
        .as_ref()
        .map_or(Ok(()), nix::unistd::dup2_stdin)
        .and_then(|()| out.map_or(Ok(()), nix::unistd::dup2_stdout))
        .and_then(|()| err.map_or(Ok(()), nix::unistd::dup2_stderr));
    match result {
        Ok(()) => Ok(files),
        Err(errno) => Err(removing(files, fail(errno))),
    }
}

/// Removes a log file this start created, if its name still names it (a failed start leaves no file).
pub(crate) fn remove_created(log: &LogFile) {
    use nix::fcntl::AtFlags;
    if !log.created {
        return;
    }
    let Ok(ours) = nix::sys::stat::fstat(&log.file) else {
        return;
    };
    let named =
        nix::sys::stat::fstatat(&log.dir, log.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
    if named.is_ok_and(|it| it.st_dev == ours.st_dev && it.st_ino == ours.st_ino) {
        let _ = nix::unistd::unlinkat(
            &log.dir,
            log.name.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
}

const DEV_NULL: &str = "/dev/null";

/// Opens /dev/null and checks that it is the null device: a regular file mounted or left over it would
/// receive what the daemon writes, from offset 0 (glibc's daemon(3) refuses it too, with ENODEV).
fn open_null() -> Result<OwnedFd, Error> {
    let path = Path::new(DEV_NULL);
    let null = open(
        path,
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .and_then(above_stdio)
    .map_err(|errno| Error::at(Step::DevNull, path, errno))?;
    let stat =
        nix::sys::stat::fstat(&null).map_err(|errno| Error::at(Step::DevNull, path, errno))?;
    let checked = if stat.st_mode & libc::S_IFMT == libc::S_IFCHR {
        null_number(stat.st_rdev)
    } else {
        Err("it is not a character device (a file mounted or left over it?), so not the null device".into())
    };
    if let Err(why) = checked {
        return Err(Error::at(Step::DevNull, path, Errno::ENODEV).with_detail(why));
    }
    Ok(null)
}

/// Linux numbers the null device 1:3 everywhere.
#[cfg(target_os = "linux")]
fn null_number(rdev: libc::dev_t) -> Result<(), String> {
    match (libc::major(rdev), libc::minor(rdev)) {
        (1, 3) => Ok(()),
        (major, minor) => Err(format!(
            "it is the character device {major}:{minor}, not the null device 1:3"
        )),
    }
}

/// Elsewhere the number varies: being a character device is the check.
#[cfg(not(target_os = "linux"))]
fn null_number(_rdev: libc::dev_t) -> Result<(), String> {
    Ok(())
}

/// Opens a log file for appending (created 0o640 under the caller's umask), close-on-exec, above 2.
///
/// In a sticky world-writable directory (`/tmp`), a symlink is followed only when it belongs to this
/// process's user or to the directory's owner: the kernel's `fs.protected_symlinks` rule, applied here
/// because many hosts turn it off. Otherwise another user could plant `/tmp/app.log -> /etc/shadow` (or
/// `/tmp/app -> /etc/cron.d`) and have a root daemon write there. The path is walked one component at a
/// time from a directory fd, each symlink read from its own inode and checked, so the rule holds for every
/// link on the way (the last component's, the directories', and each link of a chain); symlinks elsewhere
/// are followed as usual.
fn open_log(path: &Path, step: Step) -> Result<LogFile, Error> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    let fail = |errno| Error::at(step, path, errno);
    let euid = nix::unistd::Uid::effective().as_raw();
    let names = |path: &Path| -> VecDeque<OsString> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let start = |absolute: bool| {
        let at = if absolute { "/" } else { "." };
        open(at, dir_flags(), Mode::empty())
            .and_then(above_stdio)
            .map(|fd| (fd, PathBuf::from(at)))
    };
    let (mut dir, mut dir_path) = start(path.has_root()).map_err(fail)?;
    let mut rest = names(path);
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        let last = rest.is_empty();
        if name == ".." {
            if last {
                break; // a path ending in `..` names a directory: the open below fails with EISDIR
            }
            dir = nix::fcntl::openat(&dir, "..", dir_flags(), Mode::empty())
                .and_then(above_stdio)
                .map_err(fail)?;
            dir_path.push("..");
            continue;
        }
        let Some((link_owner, target)) = read_link(&dir, &name).map_err(fail)? else {
            if last {
                return open_log_file(dir, &dir_path, name, path, step);
            }
            dir = nix::fcntl::openat(
                &dir,
                name.as_os_str(),
                dir_flags() | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .and_then(above_stdio)
            .map_err(fail)?;
            dir_path.push(&name);
            continue;
        };
        let dir_stat = nix::sys::stat::fstat(&dir).map_err(fail)?;
        let sticky_world_writable =
            dir_stat.st_mode & libc::S_ISVTX != 0 && dir_stat.st_mode & libc::S_IWOTH != 0;
        if sticky_world_writable && link_owner != euid && link_owner != dir_stat.st_uid {
            let it = if links == 0 && last {
                "it is".to_string()
            } else {
                format!("it leads to {}, which is", dir_path.join(&name).display())
            };
            return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
                "{it} a symbolic link owned by uid {link_owner} in {}, a sticky world-writable directory owned \
                 by uid {}: following it would let that user choose the file written (the \
                 fs.protected_symlinks rule)",
                dir_path.display(),
                dir_stat.st_uid
            )));
        }
        // As root, a link that another user could have planted (theirs, in a directory not only root
        // may write to) is refused too, sticky or not: a daemon's user who owns its log directory
        // (`/var/log/app`) could otherwise point `app.log` at `/etc/passwd` for the next start as root.
        // A link root made there is the administrator's choice and is followed.
        let others_may_write = dir_stat.st_uid != 0 || dir_stat.st_mode & 0o022 != 0;
        if euid == 0 && link_owner != 0 && others_may_write {
            return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
                "{} is a symbolic link owned by uid {link_owner} in {}, which others than root may write \
                 to: following it as root would let that user choose the file written",
                dir_path.join(&name).display(),
                dir_path.display(),
            )));
        }
        // The kernel's own limit on the links of one lookup.
        links += 1;
        if links > 40 {
            return Err(fail(Errno::ELOOP));
        }
        // The target read from the very link checked (a symlink cannot be changed, only replaced),
        // resolved from the link's directory, or from the root.
        let target = Path::new(&target);
        if target.has_root() {
            (dir, dir_path) = start(true).map_err(fail)?;
        }
        for name in names(target).into_iter().rev() {
            rest.push_front(name);
        }
    }
    // Only `/`, `.` or a path ending in `..` get here: directories, not files.
    Err(fail(Errno::EISDIR))
}

/// The last step of [`open_log`]: `name` in `dir` is not a symlink (or is missing). Created with
/// `O_CREAT|O_EXCL`, else the existing file opened: so the start knows whether it made the file (only
/// then is it given to the daemon's user, or removed on a failed start: review F10, F15), never from a
/// `stat` made earlier. Opened without following a symlink (one planted since fails) and without blocking
/// (a FIFO nobody reads fails at once instead of hanging the start; a FIFO with a reader works, in blocking
/// mode as usual). An existing file is refused when:
/// - in a sticky world-writable directory, it belongs to another user than this process's or the
///   directory's (the kernel's `fs.protected_regular` and `fs.protected_fifos` rules): its owner could read
///   the log, or hold the start on a FIFO;
/// - it is a regular file with more than one link (review F5): where `fs.protected_hardlinks` is off, a
///   user who may write the directory can link any file there (`/etc/shadow`) and have the daemon append
///   to it. A log file has one name; the pid file is held to the same rule.
fn open_log_file(
    dir: OwnedFd,
    dir_path: &Path,
    name: std::ffi::OsString,
    path: &Path,
    step: Step,
) -> Result<LogFile, Error> {
    let fail = |errno| Error::at(step, path, errno);
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(0o640);
    let exclusive = flags | OFlag::O_CREAT | OFlag::O_EXCL;
    // A file removed between the two opens is created at the next try.
    let mut tries = 0;
    let (file, created) = loop {
        tries += 1;
        match nix::fcntl::openat(&dir, name.as_os_str(), exclusive, mode) {
            Ok(file) => break (file, true),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(fail(errno)),
        }
        match nix::fcntl::openat(&dir, name.as_os_str(), flags, mode) {
            Ok(file) => break (file, false),
            Err(Errno::ENOENT) if tries < 8 => {}
            Err(Errno::ENXIO) => {
                return Err(fail(Errno::ENXIO).with_detail("it is a FIFO that nobody reads"));
            }
            Err(errno) => return Err(fail(errno)),
        }
    };
    let log = LogFile {
        file: above_stdio(file).map_err(fail)?,
        dir,
        name,
        created,
    };
    if let Err(error) = check_log_file(&log, dir_path, path, step) {
        remove_created(&log);
        return Err(error);
    }
    let status = OFlag::from_bits_truncate(fcntl(&log.file, FcntlArg::F_GETFL).map_err(fail)?);
    fcntl(&log.file, FcntlArg::F_SETFL(status - OFlag::O_NONBLOCK)).map_err(fail)?;
    Ok(log)
}

/// The owner and link-count rules of [`open_log_file`], on the opened fd.
fn check_log_file(log: &LogFile, dir_path: &Path, path: &Path, step: Step) -> Result<(), Error> {
    let fail = |errno| Error::at(step, path, errno);
    if log.created {
        return Ok(());
    }
    let dir_stat = nix::sys::stat::fstat(&log.dir).map_err(fail)?;
    let sticky_world_writable =
        dir_stat.st_mode & libc::S_ISVTX != 0 && dir_stat.st_mode & libc::S_IWOTH != 0;
    let file_stat = nix::sys::stat::fstat(&log.file).map_err(fail)?;
    let euid = nix::unistd::Uid::effective().as_raw();
    if sticky_world_writable && file_stat.st_uid != euid && file_stat.st_uid != dir_stat.st_uid {
        return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
            "it belongs to uid {} in {}, a sticky world-writable directory owned by uid {}: that user \
             could read the log or hold the start (the fs.protected_regular rule)",
            file_stat.st_uid,
            dir_path.display(),
            dir_stat.st_uid
        )));
    }
    if file_stat.st_mode & libc::S_IFMT == libc::S_IFREG && file_stat.st_nlink > 1 {
        return Err(Error::at(step, path, Errno::EMLINK).with_detail(format!(
            "it has {} hard links: a log file has one name, and another could be a file the daemon must \
             not write to (the fs.protected_hardlinks rule)",
            file_stat.st_nlink
        )));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// The owner and the target of `name` in `dir` if it is a symlink, both read from one inode: the link is
/// opened itself (`O_PATH|O_NOFOLLOW`), so a link swapped in between cannot pair one's owner with another's
/// target. `None` when `name` is missing or not a symlink.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_link(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
) -> Result<Option<(libc::uid_t, std::ffi::OsString)>, Errno> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let link = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Ok(link) => link,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let stat = nix::sys::stat::fstat(&link)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(None);
    }
    let target = nix::fcntl::readlinkat(&link, "")?;
    Ok(Some((stat.st_uid, target)))
}

/// Elsewhere there is no `O_PATH`: the owner and the target are read by name, then the owner is read
/// again; a link replaced in between (a new inode) is refused.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_link(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
) -> Result<Option<(libc::uid_t, std::ffi::OsString)>, Errno> {
    use nix::fcntl::AtFlags;
    let before = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    if before.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(None);
    }
    let target = nix::fcntl::readlinkat(dir, name)?;
    let after = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if before.st_ino != after.st_ino || after.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(Errno::ELOOP);
    }
    Ok(Some((before.st_uid, target)))
}
