//! File descriptors: closing every inherited one (but those kept), and pointing stdio at /dev/null or files.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

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
    #[cfg(not(target_vendor = "apple"))]
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    #[cfg(target_vendor = "apple")]
    let (read_end, write_end) = {
        // No pipe2 here; the process is single-threaded, so no exec can come between pipe and fcntl.
        let (read_end, write_end) = nix::unistd::pipe()?;
        for end in [&read_end, &write_end] {
            fcntl(end, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        }
        (read_end, write_end)
    };
    Ok((above_stdio(read_end)?, above_stdio(write_end)?))
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

/// Points stdin at /dev/null, and stdout and stderr at /dev/null or at the given files (appended to,
/// created 0o640 under the caller's umask). The targets are opened first, then `dup2`ed onto 0, 1 and 2,
/// which are never closed first, so no other open can take their numbers in between.
pub(crate) fn redirect_stdio(stdout: Option<&Path>, stderr: Option<&Path>) -> Result<(), Error> {
    let null = open_above_stdio(Path::new("/dev/null"), OFlag::O_RDWR, Step::DevNull)?;
    let log_flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT;
    let out = stdout
        .map(|path| open_above_stdio(path, log_flags, Step::Stdout))
        .transpose()?;
    // stderr to the same path as stdout shares stdout's open file, so their lines interleave in order.
    let shared = stderr.is_some() && stderr == stdout;
    let err = match stderr {
        Some(path) if !shared => Some(open_above_stdio(path, log_flags, Step::Stderr)?),
        _ => None,
    };
    let null = null.as_raw_fd();
    let out_fd = out.as_ref().map_or(null, AsRawFd::as_raw_fd);
    let err_fd = match &err {
        Some(file) => file.as_raw_fd(),
        None if shared => out_fd,
        None => null,
    };
    for (source, target) in [(null, 0), (out_fd, 1), (err_fd, 2)] {
        // SAFETY: `source` is an fd opened above; `target` is 0, 1 or 2, which dup2 replaces atomically.
        // No Rust object owns 0, 1 or 2 (std's handles borrow them by number), so replacing them is sound.
        let result = unsafe { libc::dup2(source, target) };
        Errno::result(result).map_err(|errno| Error::os(Step::Stdio, None, errno))?;
    }
    Ok(())
}

/// Opens `path` with close-on-exec, at a number above 2 even when the launcher ran with 0, 1 or 2 closed.
fn open_above_stdio(path: &Path, flags: OFlag, step: Step) -> Result<OwnedFd, Error> {
    open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )
    .and_then(above_stdio)
    .map_err(|errno| Error::at(step, path, errno))
}
