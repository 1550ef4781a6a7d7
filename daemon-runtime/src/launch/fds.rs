//! Closing every inherited fd above 2 but those kept: `close_range(2)` over the gaps between the kept fds,
//! else the listing of `/proc/self/fd` (`/dev/fd`), else a loop to the hard `RLIMIT_NOFILE`.

use std::os::fd::RawFd;

#[cfg(target_os = "linux")]
use nix::errno::Errno;

use crate::error::{Error, Step};
use crate::sys::fd::{CloseAll, close_unowned};

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

#[cfg(not(target_os = "linux"))]
pub(crate) fn table_is_small() -> bool {
    false
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
    let stdio = (0..=2)
        .filter(|fd| crate::sys::fd::flags(*fd).is_some())
        .count();
    usize::try_from(open) == Ok(stdio)
}

/// Closes the fds above 2 that nothing in the process can own, except those in `keep`, whatever their
/// numbers: with `all` (the program's entry), every one; without, only those inherited across `exec`
/// (without close-on-exec). `fd_table` is the size of the process's fd table, when known (`FDSize` in
/// /proc/self/status).
///
/// With `all` on Linux: `close_range(2)` over the gaps between the kept fds (one system call when nothing
/// is kept), unless the fd table is large. Otherwise, or on kernels before 5.9: list the open fds
/// (`/proc/self/fd`, `/dev/fd`) and close those. Last resort: every number up to the hard `RLIMIT_NOFILE`.
pub(crate) fn close_inherited(
    keep: &[RawFd],
    all: Option<CloseAll>,
    fd_table: Option<u64>,
) -> Result<(), Error> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    #[cfg(not(target_os = "linux"))]
    let _ = fd_table; // only Linux has close_range
    #[cfg(target_os = "linux")]
    if let Some(all) = all.filter(|_| fd_table.is_none_or(|slots| slots <= CLOSE_RANGE_MAX_TABLE)) {
        match close_ranges(&keep, all) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOSYS | Errno::EINVAL | Errno::EPERM) => {}
            Err(errno) => return Err(Error::os(Step::CloseFds, None, errno)),
        }
    }
    if close_listed(&keep, all).is_some() {
        return Ok(());
    }
    close_loop(&keep, all)
}

#[cfg(target_os = "linux")]
fn close_ranges(keep: &[RawFd], all: CloseAll) -> Result<(), Errno> {
    let mut low: u32 = 3;
    for &fd in keep {
        // Kept fds are above 2 (filtered by the caller), so the conversion is exact.
        let fd = fd.unsigned_abs();
        if fd > low {
            crate::sys::fd::close_range(low, fd - 1, all)?;
        }
        low = fd + 1;
    }
    crate::sys::fd::close_range(low, u32::MAX, all)
}

/// Closes the listed open fds that nothing can own; `None` when there is no listing to read.
fn close_listed(keep: &[RawFd], all: Option<CloseAll>) -> Option<()> {
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
        close_unowned(fd, all);
    }
    Some(())
}

/// The classic method: every number up to the hard limit.
fn close_loop(keep: &[RawFd], all: Option<CloseAll>) -> Result<(), Error> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|errno| Error::os(Step::CloseFds, None, errno))?;
    let last = if hard == nix::sys::resource::RLIM_INFINITY {
        1 << 20
    } else {
        RawFd::try_from(hard).unwrap_or(RawFd::MAX)
    };
    for fd in 3..last {
        if keep.binary_search(&fd).is_err() {
            close_unowned(fd, all);
        }
    }
    Ok(())
}
