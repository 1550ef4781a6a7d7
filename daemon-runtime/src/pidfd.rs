//! Process file descriptors (Linux 5.3): a process pinned by an fd, so that its pid cannot be recycled
//! under a signal, and waited for with poll(2) whether or not it is our child.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// `pidfd_open(2)`: ESRCH when no such process exists (any more).
pub(crate) fn open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd (or -1); no memory is involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`.
pub(crate) fn send(pidfd: &OwnedFd, signal: Signal) -> Result<(), Errno> {
    let (fd, signal) = (pidfd.as_raw_fd(), signal as libc::c_int);
    let no_info: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a pidfd we own, a valid signal number, a null siginfo (the kernel fills it as kill does),
    // no flags.
    let result = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, signal, no_info, 0) };
    Errno::result(result).map(drop)
}

/// Waits up to `timeout` for the process to exit (the pidfd turns readable; its children have been
/// reparented by then); whether it did.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        // A timeout too large to represent waits for ever.
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(left)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(errno) => return Err(errno),
        }
    }
}

/// Milliseconds for poll(2), rounded up so that a wait never ends early.
pub(crate) fn poll_timeout(left: Duration) -> PollTimeout {
    let ms = left.as_micros().div_ceil(1000);
    PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
}
