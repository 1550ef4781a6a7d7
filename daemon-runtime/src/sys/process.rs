//! Processes: `fork` with the single-thread proof it needs, pidfds (Linux 5.3), the nice value, the
//! monotonic clock.

#[cfg(all(feature = "control", target_os = "linux"))]
use std::os::fd::AsRawFd;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

use nix::errno::Errno;
#[cfg(target_os = "linux")]
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
#[cfg(all(feature = "control", target_os = "linux"))]
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::env::SingleThread;

/// Which side of a fork this process is on.
#[derive(Debug)]
pub(crate) enum Forked {
    Parent(Pid),
    /// The child, which runs one thread (a copy of the forking one).
    Child(SingleThread),
}

/// `fork(2)`, with the proof that this process runs one thread: the child is then a full copy of the only
/// thread, and may allocate and take locks.
pub(crate) fn fork(_alone: &SingleThread) -> Result<Forked, Errno> {
    // SAFETY: the process runs a single thread (the token proves it), so no lock or memory another thread
    // was using is left half-done in the child.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        // SAFETY: a forked child runs one thread.
        nix::unistd::ForkResult::Child => Ok(Forked::Child(unsafe { SingleThread::assume() })),
    }
}

/// `_exit(2)`: no second flush of stdio buffers, no atexit handlers, no destructors (in a forked child, or
/// the launcher once its daemon is ready).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Makes `command`'s child inherit `fds` (open in this process, close-on-exec here): their close-on-exec
/// flag is cleared in the child only, between its fork and its exec, so that no other child of this
/// process (another thread's) ever inherits them.
#[cfg(all(feature = "control", target_os = "linux"))]
pub(crate) fn inherit_in_child(command: &mut std::process::Command, fds: Vec<RawFd>) {
    use std::os::unix::process::CommandExt as _;
    let clear = move || {
        for fd in &fds {
            // SAFETY: F_SETFD only sets a descriptor's flags; fcntl is async-signal-safe, as code between
            // fork and exec must be.
            if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } == -1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe code may
    // run: it iterates a vector allocated before the fork (no allocation) and calls fcntl.
    unsafe { command.pre_exec(clear) };
}

/// `setpriority(PRIO_PROCESS, 0, nice)`.
pub(crate) fn set_nice(nice: i32) -> Result<(), Errno> {
    // SAFETY: setpriority(2) takes integers only.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) };
    Errno::result(result).map(drop)
}

/// `getpriority(PRIO_PROCESS, 0)`: the nice value (-1 is a value too: errno tells an error).
pub(crate) fn nice() -> Result<i32, Errno> {
    Errno::clear();
    // SAFETY: getpriority(2) takes integers only.
    let value = unsafe { libc::getpriority(libc::PRIO_PROCESS as _, 0) };
    match Errno::last_raw() {
        0 => Ok(value),
        _ => Err(Errno::last()),
    }
}

/// `CLOCK_MONOTONIC` in microseconds.
pub(crate) fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which lives for the call.
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec).unwrap_or(0) / 1000;
    seconds.saturating_mul(1_000_000).saturating_add(micros)
}

/// `pidfd_open(2)`: ESRCH when no such process exists (any more).
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd (or -1); no memory is involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_getfd(2)` (Linux 5.6): a duplicate of the process's descriptor `target`, close-on-exec, sharing its
/// open file description. The kernel allows it to whoever may ptrace the process (root, or its own user
/// while it is dumpable and the Yama policy permits).
#[cfg(target_os = "linux")]
#[cfg(feature = "control")]
pub(crate) fn pidfd_getfd(pidfd: &OwnedFd, target: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_getfd takes a pidfd we own, a descriptor number in the other process and no flags,
    // and returns a new descriptor (or -1); no memory of ours is involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    let fd = Errno::result(fd)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`.
#[cfg(target_os = "linux")]
#[cfg(feature = "control")]
pub(crate) fn pidfd_send(pidfd: &OwnedFd, signal: Signal) -> Result<(), Errno> {
    let (fd, signal) = (pidfd.as_raw_fd(), signal as libc::c_int);
    let no_info: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a pidfd we own, a valid signal number, a null siginfo (the kernel fills it as kill does),
    // no flags.
    let result = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, signal, no_info, 0) };
    Errno::result(result).map(drop)
}

/// Waits up to `timeout` for the process to exit (the pidfd turns readable; its children have been
/// reparented by then); whether it did.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_wait(pidfd: &OwnedFd, timeout: Duration) -> Result<bool, Errno> {
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
#[cfg(target_os = "linux")]
pub(crate) fn poll_timeout(left: Duration) -> PollTimeout {
    let ms = left.as_micros().div_ceil(1000);
    PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
}
