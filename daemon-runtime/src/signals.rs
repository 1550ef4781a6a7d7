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
/// it), leaves handlers this process installed alone, empties the signal mask, and ignores SIGHUP until
/// [`restore_hup`] (the first child's exit must not hang up the daemon).
pub(crate) fn reset() -> Result<SavedHup, Error> {
    let mut hup = None;
    for signal in 1..NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP || signal == libc::SIGPIPE {
            continue;
        }
        let Some(mut action) = query(signal) else {
            reset_reserved(signal)?;
            continue;
        };
        let ignored = action.sa_sigaction == libc::SIG_IGN;
        if ignored {
            action.sa_sigaction = libc::SIG_DFL;
        }
        if signal == libc::SIGHUP {
            hup = Some(action);
            set(signal, &ignore()).map_err(|errno| Error::os(Step::Signals, None, errno))?;
        } else if ignored {
            set(signal, &action).map_err(|errno| Error::os(Step::Signals, None, errno))?;
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
    .map_err(|errno| Error::os(Step::Signals, None, errno))?;
    Ok(SavedHup(hup.unwrap_or_else(default)))
}

/// Gives the daemon the SIGHUP disposition it should have: `SIG_DFL`, or the handler the process installed.
pub(crate) fn restore_hup(saved: &SavedHup) -> Result<(), Error> {
    set(libc::SIGHUP, &saved.0).map_err(|errno| Error::os(Step::Signals, None, errno))
}

/// The current action of `signal`; `None` for numbers the C library reserves (EINVAL).
fn query(signal: libc::c_int) -> Option<libc::sigaction> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action makes sigaction(2) only read the current one into `old`, which is valid,
    // writable memory of the right type.
    let result = unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: on success the kernel filled `old`; it was zeroed before, which is a valid sigaction too.
    (result == 0).then(|| unsafe { old.assume_init() })
}

/// The C library reserves a few real-time signals (glibc: 32 and 33) and refuses them to sigaction(3);
/// an ignored disposition inherited on them still has to go, so ask the kernel directly.
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
fn reset_reserved(signal: libc::c_int) -> Result<(), Error> {
    /// The kernel's `struct sigaction` on these architectures: handler, flags, restorer, mask.
    #[repr(C)]
    #[derive(Default)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let mask_size = std::mem::size_of::<u64>();
    let mut old = KernelSigaction::default();
    // SAFETY: rt_sigaction with a null new action only writes the current one into `old`, a properly laid
    // out kernel sigaction for this architecture, with the kernel's 8-byte signal set size.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            std::ptr::null::<KernelSigaction>(),
            &mut old,
            mask_size,
        )
    };
    if result != 0 || old.handler != libc::SIG_IGN {
        return Ok(());
    }
    let default = KernelSigaction::default(); // SIG_DFL, no flags, empty mask
                                              // SAFETY: as above; the new action is SIG_DFL, which runs no code of ours.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &default,
            std::ptr::null_mut::<KernelSigaction>(),
            mask_size,
        )
    };
    Errno::result(result)
        .map(drop)
        .map_err(|errno| Error::os(Step::Signals, None, errno))
}

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)))]
fn reset_reserved(_signal: libc::c_int) -> Result<(), Error> {
    Ok(())
}

fn set(signal: libc::c_int, action: &libc::sigaction) -> Result<(), Errno> {
    // SAFETY: `action` is a valid sigaction: either one the kernel returned, with its handler changed to
    // SIG_DFL or SIG_IGN (which run no code of ours), or the saved one restored unchanged.
    let result = unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) };
    Errno::result(result).map(drop)
}

fn with_handler(handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: all-zero bytes are a valid sigaction (no flags, empty mask); the handler is set below.
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = handler;
    action
}

fn ignore() -> libc::sigaction {
    with_handler(libc::SIG_IGN)
}

fn default() -> libc::sigaction {
    with_handler(libc::SIG_DFL)
}
