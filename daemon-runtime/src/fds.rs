//! File descriptors: closing every inherited one (but those kept), and pointing stdio at /dev/null or files.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Step};

/// Closes every fd above 2 except those in `keep`, whatever their numbers.
///
/// Linux: `close_range(2)` over the gaps between the kept fds (one system call when nothing is kept).
/// Elsewhere, or on kernels before 5.9: list the open fds (`/proc/self/fd`, `/dev/fd`) and close those.
/// Last resort: `close(2)` on every number up to the hard `RLIMIT_NOFILE`.
pub(crate) fn close_inherited(keep: &[RawFd]) -> Result<(), Error> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    #[cfg(target_os = "linux")]
    match close_ranges(&keep) {
        Ok(()) => return Ok(()),
        Err(Errno::ENOSYS) | Err(Errno::EINVAL) | Err(Errno::EPERM) => {}
        Err(errno) => return Err(Error::os(Step::CloseFds, None, errno)),
    }
    if close_listed(&keep).is_some() {
        return Ok(());
    }
    close_loop(&keep)
}

#[cfg(target_os = "linux")]
fn close_ranges(keep: &[RawFd]) -> Result<(), Errno> {
    let mut low: u32 = 3;
    for &fd in keep {
        let fd = fd as u32;
        if fd > low {
            close_range(low, fd - 1)?;
        }
        low = fd + 1;
    }
    close_range(low, u32::MAX)
}

#[cfg(target_os = "linux")]
fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range(2) takes two integers and a flags word and touches no memory of ours. The fds it
    // closes are the inherited ones above 2 that the caller does not keep; no live Rust object owns them,
    // because this runs before the daemon's body and the runtime's own fds are created afterwards.
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

/// Closes the fds that the OS lists as open; `None` when there is no listing to read.
fn close_listed(keep: &[RawFd]) -> Option<()> {
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
    // The listing's own fd is in `open` too, but it was closed when `entries` was dropped: EBADF is fine.
    for fd in open {
        close_raw(fd);
    }
    Some(())
}

/// The seed's method: close every number up to the hard limit.
fn close_loop(keep: &[RawFd]) -> Result<(), Error> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|errno| Error::os(Step::CloseFds, None, errno))?;
    let last = if hard == nix::sys::resource::RLIM_INFINITY {
        1 << 20
    } else {
        hard.min(i32::MAX as _)
    };
    for fd in 3..last as RawFd {
        if keep.binary_search(&fd).is_err() {
            close_raw(fd);
        }
    }
    Ok(())
}

fn close_raw(fd: RawFd) {
    // SAFETY: `fd` is an inherited descriptor above 2 that nothing in this process owns (see
    // close_inherited); closing a number that is not open only returns EBADF.
    unsafe { libc::close(fd) };
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
    let fd = open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(|errno| Error::at(step, path, errno))?;
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raised =
        fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(|errno| Error::at(step, path, errno))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raised) })
}
