//! The syslog relay's process: started with a double fork, so that it is not the daemon's child (a body
//! that waits for its own children never sees it, and no zombie is left when it ends first), holding only
//! the descriptors it is given, stdio on /dev/null, deaf to the signals that end a daemon; and the local
//! time of its lines' timestamps.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};

use super::env::SingleThread;
use super::process::{Forked, exit_now, fork};

/// Starts `relay` in a new process, grandchild of this one, and returns once the intermediate child has
/// exited (this process then has no new child). In the relay, every descriptor but `keep` is closed
/// first (the relay never returns to the code that owns them: it ends with `_exit` after `relay`), stdio
/// is put on /dev/null (so that a terminal or the launcher's pipe is not held open by it), the signals
/// that stop a daemon are ignored (it ends when its input does) and the others back to their defaults (a
/// handler the program installed would act on numbers that are no longer its own), the mask emptied.
///
/// `Err` when a fork failed; the relay's own set-up failures are its to report (through a kept fd).
pub(crate) fn spawn(
    alone: &SingleThread,
    keep: &[RawFd],
    relay: impl FnOnce(),
) -> Result<(), Errno> {
    match fork(alone)? {
        Forked::Parent(intermediate) => match waitpid(intermediate, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(Errno::from_raw(code)),
            _ => Err(Errno::ECHILD),
        },
        Forked::Child(alone) => {
            match fork(&alone) {
                Ok(Forked::Parent(_)) => exit_now(0),
                Ok(Forked::Child(_)) => {}
                Err(errno) => exit_now(errno as i32),
            }
            close_all_but(keep);
            null_stdio();
            deaf();
            relay();
            exit_now(0)
        }
    }
}

/// Closes every descriptor but `keep`.
fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|fd| u32::try_from(*fd).ok())
        .collect();
    keep.sort_unstable();
    let mut first = 0;
    for fd in keep {
        if fd > first {
            close_range(first, fd - 1);
        }
        first = fd + 1;
    }
    close_range(first, u32::MAX);
}

#[cfg(target_os = "linux")]
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range(2) takes integers and touches no memory. In the relay, nothing will use the
    // descriptors closed: it runs the relay's own code, which holds only the kept ones, then `_exit`s.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::from(last),
            0 as libc::c_uint,
        )
    };
    if done != 0 {
        close_each(first, last);
    }
}

#[cfg(not(target_os = "linux"))]
fn close_range(first: u32, last: u32) {
    close_each(first, last);
}

/// One `close` per number, up to the descriptor limit (before Linux 5.9, and elsewhere).
// `rlim_t` is u64 on Linux, i64 on FreeBSD.
#[allow(clippy::useless_conversion)]
fn close_each(first: u32, last: u32) {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| {
            u64::try_from(soft).unwrap_or(1 << 20).min(1 << 20)
        });
    let last = u64::from(last).min(limit.saturating_sub(1));
    for fd in u64::from(first)..=last {
        let Ok(fd) = libc::c_int::try_from(fd) else {
            return;
        };
        // SAFETY: as in `close_range`: nothing in the relay uses the descriptors closed.
        unsafe { libc::close(fd) };
    }
}

/// Opens /dev/null on 0, 1 and 2 (each open takes the lowest free number, and all three are closed).
fn null_stdio() {
    for _ in 0..3 {
        // SAFETY: the path is a NUL-terminated literal; the descriptor is left on 0, 1 or 2 on purpose,
        // owned by no Rust object (stdio is used by number).
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd < 0 {
            return;
        }
    }
}

/// Signals that end or stop a daemon are ignored (a `kill` of the process group, a terminal's Ctrl-C,
/// systemd's SIGTERM to the cgroup: the relay ends at the end of its input, after the daemon's last
/// line); every other signal gets its default action; the mask is emptied.
fn deaf() {
    const IGNORED: [libc::c_int; 8] = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTSTP,
    ];
    for signal in 1..32 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let action = if IGNORED.contains(&signal) {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: SIG_IGN and SIG_DFL are dispositions, not handlers: no code of ours runs on the signal.
        unsafe { libc::signal(signal, action) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

/// The local time now, as RFC 3164 writes it: `Dec  6 23:04:48` (month names in English, the day padded
/// with a space).
pub(crate) fn local_stamp() -> [u8; 15] {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seconds = libc::time_t::try_from(now).unwrap_or_default();
    // SAFETY: an all-zero `tm` is a valid value (integers, and a null zone name pointer on glibc).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r writes only `tm`.
    let converted = unsafe { libc::localtime_r(&raw const seconds, &raw mut tm) };
    if converted.is_null() {
        return *b"Jan  1 00:00:00";
    }
    let month = usize::try_from(tm.tm_mon).unwrap_or(0).min(11);
    let two = |n: libc::c_int, pad: u8| {
        let n = u8::try_from(n.clamp(0, 99)).unwrap_or(0);
        [if n < 10 { pad } else { b'0' + n / 10 }, b'0' + n % 10]
    };
    let mut stamp = [b' '; 15];
    stamp[..3].copy_from_slice(MONTHS[month]);
    stamp[4..6].copy_from_slice(&two(tm.tm_mday, b' '));
    stamp[7..9].copy_from_slice(&two(tm.tm_hour, b'0'));
    stamp[9] = b':';
    stamp[10..12].copy_from_slice(&two(tm.tm_min, b'0'));
    stamp[12] = b':';
    stamp[13..15].copy_from_slice(&two(tm.tm_sec, b'0'));
    stamp
}
