//! File descriptors by number: closing the inherited ones, taking one over, moving one above stdio.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// The program's word that no object in the process owns a descriptor above 2 but the ones the daemon
/// keeps: made only by the macro's glue, for `#[daemon]` on the first call of a binary's root `main`,
/// before its body. With it, every descriptor above 2 may be closed, by number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloseAll(());

impl CloseAll {
    /// # Safety
    ///
    /// When the daemon this is given to starts, no object in the process owns an fd above 2 that is not
    /// among its kept fds (`keep_fds`): each of those is closed, and its owner would then act on a number
    /// that the daemon's next `open` reuses.
    pub(crate) const unsafe fn assume() -> CloseAll {
        CloseAll(())
    }
}

/// The flags a directory is opened with only to open, check and remove names in it: `O_PATH` where the
/// system has it (no read permission needed, nothing of the directory read).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Without `O_PATH`, a read-only descriptor.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// `close_range(2)` of `first..=last`, with the program's word that nothing there is owned (Linux 5.9).
#[cfg(target_os = "linux")]
pub(crate) fn close_range(first: u32, last: u32, _all: CloseAll) -> Result<(), Errno> {
    // SAFETY: close_range(2) takes integers and touches no memory of ours; `CloseAll` is the program's word
    // that no object owns a descriptor in the range (the caller leaves out the kept ones).
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::from(last),
            0 as libc::c_uint,
        )
    };
    Errno::result(result).map(drop)
}

/// Closes `fd` if nothing in this process can own it: with [`CloseAll`], any; without, only one without
/// close-on-exec, which came across `exec` (Rust opens every descriptor close-on-exec; a program that made
/// one inheritable on purpose keeps it with `keep_fds`, as `Daemon::start` documents). A number that is not
/// open is left alone.
pub(crate) fn close_unowned(fd: RawFd, all: Option<CloseAll>) {
    if all.is_none() && flags(fd).is_none_or(|flags| flags & libc::FD_CLOEXEC != 0) {
        return;
    }
    // SAFETY: nothing in this process owns `fd` (see above). Closing a number that is not open only
    // returns EBADF.
    unsafe { libc::close(fd) };
}

/// The descriptor flags of `fd` (`F_GETFD`), `None` when it is not open.
pub(crate) fn flags(fd: RawFd) -> Option<libc::c_int> {
    // SAFETY: F_GETFD only reads a descriptor's flags; on a number that is not open it returns EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (flags >= 0).then_some(flags)
}

/// Moves `fd` above 2 when it landed on 0, 1 or 2 (the launcher ran with some of them closed), so that a
/// `dup2` onto stdio cannot replace it. No system call in the usual case.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raised = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raised) })
}

/// A pipe whose ends are close-on-exec and above 2 (with 0, 1 or 2 closed at launch, an end could land
/// there, where the daemon's `dup2` onto stdio would replace it).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    // std's pipe is close-on-exec on every platform (pipe2 where it exists).
    let (read_end, write_end) =
        std::io::pipe().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok((
        above_stdio(read_end.into())?,
        above_stdio(write_end.into())?,
    ))
}

/// What an inherited descriptor is, as far as taking it over goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A socket or a FIFO: what `ListenStream=` and `ListenFIFO=` pass.
    SocketOrFifo,
    /// Anything else (a regular file, a device, a memfd).
    Other,
}

/// Takes over `fd`, passed by the service manager, if it is open and was inherited (not close-on-exec:
/// systemd clears the flag, while Rust opens every descriptor close-on-exec, so one the program opened
/// itself is never taken) and `accept` accepts its kind; makes it close-on-exec. Called once per number,
/// at start, before the program can have wrapped it.
pub(crate) fn adopt_inherited(fd: RawFd, accept: impl Fn(Kind) -> bool) -> Option<OwnedFd> {
    let flags = flags(fd).filter(|flags| flags & libc::FD_CLOEXEC == 0)?;
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) writes one stat into a live local; `fd` is open (checked just above).
    if unsafe { libc::fstat(fd, &raw mut stat) } == -1 {
        return None;
    }
    let kind = match stat.st_mode & libc::S_IFMT {
        libc::S_IFSOCK | libc::S_IFIFO => Kind::SocketOrFifo,
        _ => Kind::Other,
    };
    if !accept(kind) {
        return None;
    }
    // SAFETY: F_SETFD only sets the close-on-exec flag of an open descriptor (checked above).
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open, was inherited across exec and nothing in this process owns it: it is
    // taken only here, once, at start.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes an open-file-description write lock (`F_OFD_SETLK`, Linux 3.15) on the whole of `file`, without
/// waiting: `Ok(false)` when another open file description holds one. Independent of `flock`; released
/// when the last descriptor of this open file closes, so a crashed holder never leaves it behind.
#[cfg(target_os = "linux")]
#[cfg(feature = "control")]
pub(crate) fn try_ofd_write_lock(file: &std::fs::File) -> Result<bool, Errno> {
    // SAFETY: an all-zero `flock` is a valid value (whole file from offset 0, pid 0 as OFD locks want).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    // Both constants are small (1 and 0): the conversions are exact.
    lock.l_type = libc::c_short::try_from(libc::F_WRLCK).unwrap_or(1);
    lock.l_whence = libc::c_short::try_from(libc::SEEK_SET).unwrap_or(0);
    // SAFETY: fcntl(F_OFD_SETLK) reads one `flock` from a live local and touches no other memory.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &raw const lock) };
    match Errno::result(result) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(errno) => Err(errno),
    }
}

/// Whether another open file description holds an open-file-description write lock on `file`
/// (`F_OFD_GETLK`): an `upgrade` in progress holds one on the lock file.
#[cfg(target_os = "linux")]
pub(crate) fn ofd_write_locked(file: &std::fs::File) -> bool {
    // SAFETY: an all-zero `flock` is a valid value (whole file from offset 0, pid 0 as OFD locks want).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::c_short::try_from(libc::F_WRLCK).unwrap_or(1);
    lock.l_whence = libc::c_short::try_from(libc::SEEK_SET).unwrap_or(0);
    // SAFETY: fcntl(F_OFD_GETLK) reads and rewrites one `flock` in a live local.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &raw mut lock) };
    result == 0 && libc::c_int::from(lock.l_type) != libc::F_UNLCK
}
