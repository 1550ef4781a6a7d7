//! Signals: inherited `SIG_IGN` dispositions back to `SIG_DFL`, the mask emptied, SIGHUP ignored across
//! `setsid` and the second fork.

use std::mem::MaybeUninit;

use nix::errno::Errno;

use crate::error::{Error, Step};

/// One past the highest signal number.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NSIG: libc::c_int = 65;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NSIG: libc::c_int = 32;

/// The SIGHUP disposition the daemon gets back once it is detached.
pub(crate) struct SavedHup(libc::sigaction);

/// Resets every inherited `SIG_IGN` disposition to `SIG_DFL` (SIGPIPE stays ignored, as Rust's runtime set
/// it), leaves handlers this process installed alone, and empties the signal mask.
///
/// `ignored` is the kernel's set of ignored signals (`SigIgn` of `/proc/self/status`), so that only those
/// need a system call; without it, every signal's disposition is queried (through the raw system call for
/// the numbers the C library keeps for itself).
pub(crate) fn reset(ignored: Option<u64>) -> Result<(), Error> {
    let fail = |errno| Error::os(Step::Signals, None, errno);
    for signal in 1..NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP || signal == libc::SIGPIPE {
            continue;
        }
        let is_ignored = match ignored {
            Some(mask) => mask & (1 << (signal - 1)) != 0,
            None => is_ignored_now(signal),
        };
        if is_ignored {
            set_default(signal).map_err(fail)?;
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
    .map_err(fail)
}

/// Ignores SIGHUP until [`restore_hup`]: the first child's exit must not hang up the daemon. One call
/// ignores it and returns what the daemon gets back: `SIG_DFL` (after [`reset`]), or the process's own
/// handler.
pub(crate) fn hold_hup() -> Result<SavedHup, Error> {
    let mut old = zeroed();
    // SAFETY: the new action is a valid sigaction whose handler is SIG_IGN (no code of ours runs), and
    // `old` is valid, writable memory for the previous action.
    let result =
        unsafe { libc::sigaction(libc::SIGHUP, &with_handler(libc::SIG_IGN), &raw mut old) };
    Errno::result(result).map_err(|errno| Error::os(Step::Signals, None, errno))?;
    Ok(SavedHup(old))
}

/// Gives the daemon the SIGHUP disposition it should have: `SIG_DFL` (after [`reset`]), or the handler
/// the process installed.
pub(crate) fn restore_hup(saved: &SavedHup) -> Result<(), Error> {
    // SAFETY: `saved.0` is the action the kernel returned for SIGHUP, restored unchanged.
    let result = unsafe { libc::sigaction(libc::SIGHUP, &raw const saved.0, std::ptr::null_mut()) };
    Errno::result(result)
        .map(drop)
        .map_err(|errno| Error::os(Step::Signals, None, errno))
}

/// Whether `signal` is ignored now. The C library refuses the numbers it reserves (EINVAL): those are
/// asked through the raw system call.
fn is_ignored_now(signal: libc::c_int) -> bool {
    let mut old = zeroed();
    // SAFETY: a null new action makes sigaction(2) only read the current one into `old`, which is valid,
    // writable memory of the right type.
    let result = unsafe { libc::sigaction(signal, std::ptr::null(), &raw mut old) };
    if result == 0 {
        old.sa_sigaction == libc::SIG_IGN
    } else {
        is_ignored_reserved(signal)
    }
}

/// Sets `signal` to `SIG_DFL`.
fn set_default(signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a valid sigaction with the handler SIG_DFL, which runs no code of ours.
    let result =
        unsafe { libc::sigaction(signal, &with_handler(libc::SIG_DFL), std::ptr::null_mut()) };
    match Errno::result(result) {
        // The C library reserves a few real-time signals for itself (glibc: 32 and 33) and refuses them to
        // sigaction(3); an ignored disposition inherited on one still has to go.
        Err(Errno::EINVAL) => set_default_reserved(signal),
        other => other.map(drop),
    }
}

/// `SIG_DFL` through the raw system call, which the C library's reservations do not filter.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn set_default_reserved(signal: libc::c_int) -> Result<(), Errno> {
    // All zeroes: SIG_DFL, no flags, no restorer, an empty mask.
    let default = KernelSigaction::default();
    // SAFETY: rt_sigaction reads a kernel sigaction laid out as the kernel expects on these architectures,
    // with the kernel's 8-byte signal set size; a null old action asks for nothing back. SIG_DFL runs no
    // code of ours.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &raw const default,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
    Errno::result(result).map(drop)
}

/// Whether a reserved signal is ignored, through the raw system call.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn is_ignored_reserved(signal: libc::c_int) -> bool {
    let mut old = KernelSigaction::default();
    // SAFETY: a null new action makes rt_sigaction only write the current one into `old`, a kernel
    // sigaction laid out as the kernel expects on these architectures, with its 8-byte signal set.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            std::ptr::null::<KernelSigaction>(),
            &raw mut old,
            std::mem::size_of::<u64>(),
        )
    };
    result == 0 && old.handler == libc::SIG_IGN
}

/// Elsewhere a reserved signal is taken as not ignored (the C library offers no way to ask).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn is_ignored_reserved(_signal: libc::c_int) -> bool {
    false
}

/// The kernel's `struct sigaction` on `x86_64` and aarch64: handler, flags, restorer, mask.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Elsewhere a reserved signal is left as it is.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn set_default_reserved(_signal: libc::c_int) -> Result<(), Errno> {
    Ok(())
}

fn zeroed() -> libc::sigaction {
    // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL, no flags, an empty mask.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

fn with_handler(handler: libc::sighandler_t) -> libc::sigaction {
    let mut action = zeroed();
    action.sa_sigaction = handler;
    action
}
