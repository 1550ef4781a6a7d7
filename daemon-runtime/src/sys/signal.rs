//! Signals: dispositions (`sigaction`, and the raw `rt_sigaction` for the numbers the C library keeps for
//! itself), the mask, holding back a signal a system call of ours would raise, and the handlers the runtime
//! registers, each async-signal-safe by construction.
//!
//! Handlers go through signal-hook-registry, the table `tokio::signal` and `signal-hook` share, so that a
//! program may use any of them beside the runtime's. The registry's `register` is unsafe because the
//! action must be async-signal-safe; every action here is written out in this module (atomic stores,
//! `send(2)`/`write(2)` of one byte, and the reopen of the log files, which makes system calls on
//! descriptors made at start), so the other modules choose among them and never write one.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
pub(crate) use signal_hook_registry::SigId;

use super::reopen::{self, Refusal, Which};

/// One past the highest signal number.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NSIG: libc::c_int = 65;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NSIG: libc::c_int = 32;

/// The SIGHUP disposition the daemon gets back once it is detached.
#[derive(Clone, Copy)]
pub(crate) struct SavedHup(libc::sigaction);

/// Resets every inherited `SIG_IGN` disposition to `SIG_DFL` (SIGPIPE stays ignored, as Rust's runtime set
/// it), leaves handlers this process installed alone, and empties the signal mask.
///
/// `ignored` is the kernel's set of ignored signals (`SigIgn` of `/proc/self/status`), so that only those
/// need a system call; without it, every signal's disposition is queried (through the raw system call for
/// the numbers the C library keeps for itself).
pub(crate) fn reset(ignored: Option<u64>) -> Result<(), Errno> {
    for signal in 1..NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP || signal == libc::SIGPIPE {
            continue;
        }
        let is_ignored = match ignored {
            Some(mask) => mask & (1 << (signal - 1)) != 0,
            None => is_ignored_now(signal),
        };
        if is_ignored {
            set_default(signal)?;
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
}

/// Ignores SIGHUP until [`restore_hup`]: the first child's exit must not hang up the daemon. One call
/// ignores it and returns what the daemon gets back: `SIG_DFL` (after [`reset`]), or the process's own
/// handler.
pub(crate) fn hold_hup() -> Result<SavedHup, Errno> {
    let mut old = zeroed();
    // SAFETY: the new action is a valid sigaction whose handler is SIG_IGN (no code of ours runs), and
    // `old` is valid, writable memory for the previous action.
    let result =
        unsafe { libc::sigaction(libc::SIGHUP, &with_handler(libc::SIG_IGN), &raw mut old) };
    Errno::result(result)?;
    Ok(SavedHup(old))
}

/// Gives the daemon the SIGHUP disposition it should have: `SIG_DFL` (after [`reset`]), or the handler
/// the process installed.
pub(crate) fn restore_hup(saved: &SavedHup) -> Result<(), Errno> {
    // SAFETY: `saved.0` is the action the kernel returned for SIGHUP, restored unchanged.
    let result = unsafe { libc::sigaction(libc::SIGHUP, &raw const saved.0, std::ptr::null_mut()) };
    Errno::result(result).map(drop)
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

/// Runs `call` with `signal` blocked in this thread, then discards the instance `call` raised (one that
/// was already pending before is left for the program), and restores the thread's mask: SIGPIPE when
/// the launcher has gone, SIGXFSZ past `RLIMIT_FSIZE` become an error return (EPIPE, EFBIG) instead of
/// killing the daemon, whatever the program's disposition.
pub(crate) fn holding<T>(signal: Signal, call: impl FnOnce() -> T) -> T {
    let only = SigSet::from(signal);
    let Ok(previous) = only.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        // pthread_sigmask fails only on invalid arguments; run the call as it is.
        return call();
    };
    let pending_before = pending(signal);
    let result = call();
    if !pending_before && pending(signal) {
        discard(&only);
    }
    let _ = previous.thread_set_mask();
    result
}

/// Whether `signal` is pending for this thread or the process.
fn pending(signal: Signal) -> bool {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending(2) fills the set it is given, a valid writable sigset_t.
    let result = unsafe { libc::sigpending(set.as_mut_ptr()) };
    if result != 0 {
        return false;
    }
    // SAFETY: sigpending succeeded, so the set is initialized.
    let set = unsafe { set.assume_init() };
    // SAFETY: `set` is a valid, initialized sigset_t filled by the kernel.
    let set = unsafe { SigSet::from_sigset_t_unchecked(set) };
    set.contains(signal)
}

/// Takes the pending (blocked) signal in `set` off, without waiting.
fn discard(set: &SigSet) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[cfg(not(target_vendor = "apple"))]
    {
        // SAFETY: sigtimedwait(2) reads the set and the timeout, both valid for the call; the null info
        // pointer asks for no siginfo. With a zero timeout it returns at once.
        let _ = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &raw const zero) };
    }
    #[cfg(target_vendor = "apple")]
    {
        // No sigtimedwait on Apple platforms; the signal is known to be pending, so sigwait returns at once.
        let _ = zero;
        let mut taken = 0;
        // SAFETY: sigwait reads the set and writes the signal number into `taken`, both valid.
        let _ = unsafe { libc::sigwait(set.as_ref(), &mut taken) };
    }
}

/// Starts `work` on a thread named `name` that blocks every signal (a thread inherits the mask it is
/// started with), so that signals meant for the program (SIGTERM, SIGHUP) are never delivered to it.
pub(crate) fn spawn_deaf(
    name: &str,
    work: impl FnOnce() + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    let previous = SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK);
    let spawned = std::thread::Builder::new().name(name.into()).spawn(work);
    if let Ok(previous) = previous {
        let _ = previous.thread_set_mask();
    }
    spawned
}

/// Withdraws a handler registered here. The registry drops an action only once no handler runs it.
pub(crate) fn unregister(id: SigId) {
    signal_hook_registry::unregister(id);
}

/// Registers the action that adds one to `counter` on each delivery of `signal`.
pub(crate) fn register_counter(signal: c_int, counter: &'static AtomicUsize) -> io::Result<SigId> {
    // SAFETY: the action is one atomic add (async-signal-safe, lock-free, cannot panic).
    unsafe {
        signal_hook_registry::register(signal, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
    }
}

/// What a subscription's handlers and its reader share: a flag per signal and the write end of a wake-up
/// socket pair. Owned here, so that the write end stays open for as long as a registered action (which
/// holds an `Arc` of this) can still run.
#[derive(Debug)]
pub(crate) struct Wake {
    pending: Vec<AtomicBool>,
    socket: OwnedFd,
}

impl Wake {
    /// `kinds` flags, and the write end of a stream socket pair the reader waits on.
    pub(crate) fn new(kinds: usize, socket: OwnedFd) -> Wake {
        Wake {
            pending: (0..kinds).map(|_| AtomicBool::new(false)).collect(),
            socket,
        }
    }

    /// Takes flag `index` (clears it): whether it was set.
    pub(crate) fn take(&self, index: usize) -> bool {
        self.pending
            .get(index)
            .is_some_and(|flag| flag.swap(false, Ordering::SeqCst))
    }

    /// The handler's work: only an atomic store and send(2), both async-signal-safe. No lock, no
    /// allocation, no panic (`get` instead of indexing); errno is saved and restored by the registry.
    fn raise(&self, index: usize) {
        if let Some(flag) = self.pending.get(index) {
            flag.store(true, Ordering::SeqCst);
        }
        send_byte(self.socket.as_raw_fd());
    }
}

/// Registers the action that sets flag `index` of `wake` and wakes its reader, on each delivery of
/// `signal`.
pub(crate) fn register_wake(signal: c_int, wake: Arc<Wake>, index: usize) -> io::Result<SigId> {
    // SAFETY: the action only calls `Wake::raise`, which does an atomic store and send(2) (both
    // async-signal-safe), takes no lock, allocates nothing and cannot panic.
    unsafe { signal_hook_registry::register(signal, move || wake.raise(index)) }
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT;

/// One byte on a socket, without blocking (a full buffer means the reader is awake already) and without
/// SIGPIPE where the platform can.
fn send_byte(fd: c_int) {
    let byte = 1u8;
    // SAFETY: send(2) of one byte from a live local on a descriptor its owner keeps open.
    unsafe { libc::send(fd, (&raw const byte).cast(), 1, SEND_FLAGS) };
}

/// The reopen of the log files on a signal (`reopen_logs_on`): its requests so far, the outcome of the
/// latest, and who to wake to report it.
static REOPEN_REQUESTS: AtomicU64 = AtomicU64::new(0);
static REOPEN_OUTCOME: AtomicU64 = AtomicU64::new(0);
static REOPEN_WAKE: AtomicI32 = AtomicI32::new(-1);
static REOPEN_OWNER: AtomicU32 = AtomicU32::new(0);

/// Registers the reopen of the log files on `signal`: the handler reopens them ([`reopen::all`]) in
/// whatever process gets the signal (a worker the daemon forked too), and in this one records the
/// outcome and writes one byte to `wake`, on which a thread waits to report it ([`reopen_outcome`]).
pub(crate) fn register_reopen(signal: c_int, wake: OwnedFd) -> io::Result<SigId> {
    REOPEN_WAKE.store(wake.as_raw_fd(), Ordering::SeqCst);
    REOPEN_OWNER.store(std::process::id(), Ordering::SeqCst);
    // The write end lives as long as the process: the handler may run at any time.
    std::mem::forget(wake);
    // SAFETY: the action is async-signal-safe: `reopen::all` makes system calls on descriptors and C
    // strings prepared at start and allocates nothing; then atomic stores and write(2) of one byte on a
    // non-blocking descriptor that stays open. It takes no lock, so it cannot deadlock with the code it
    // interrupts.
    unsafe { signal_hook_registry::register(signal, on_reopen) }
}

fn on_reopen() {
    let outcome = reopen::all();
    if std::process::id() != REOPEN_OWNER.load(Ordering::SeqCst) {
        // A forked worker: its own files are reopened; nobody here reports.
        return;
    }
    REOPEN_OUTCOME.store(encode(outcome), Ordering::SeqCst);
    REOPEN_REQUESTS.fetch_add(1, Ordering::SeqCst);
    let byte = 1u8;
    // SAFETY: write(2) of one byte from a live local to the pipe's write end, which is never closed.
    // EAGAIN (a wake-up is pending already) is fine.
    unsafe {
        libc::write(
            REOPEN_WAKE.load(Ordering::SeqCst),
            (&raw const byte).cast(),
            1,
        )
    };
}

/// The number of the latest reopen request, and its outcome.
pub(crate) fn reopen_outcome() -> (u64, Result<(), (Which, Refusal)>) {
    let requests = REOPEN_REQUESTS.load(Ordering::SeqCst);
    (requests, decode(REOPEN_OUTCOME.load(Ordering::SeqCst)))
}

/// An outcome in one word: the file (bits 0-7: 0 none, 1 stdout, 2 stderr), the refusal (bits 8-15), its
/// number (errno or uid, bits 32-63).
fn encode(outcome: Result<(), (Which, Refusal)>) -> u64 {
    let Err((which, refusal)) = outcome else {
        return 0;
    };
    let which = match which {
        Which::Stdout => 1,
        Which::Stderr => 2,
    };
    let (kind, number) = match refusal {
        Refusal::Os(errno) => (1, errno as u32),
        Refusal::Symlink => (2, 0),
        Refusal::Fifo => (3, 0),
        Refusal::NotRegular => (4, 0),
        Refusal::Owner(uid) => (5, uid),
        Refusal::Links => (6, 0),
        Refusal::OutsideChroot => (7, 0),
    };
    which | kind << 8 | u64::from(number) << 32
}

fn decode(word: u64) -> Result<(), (Which, Refusal)> {
    let which = match word & 0xff {
        1 => Which::Stdout,
        2 => Which::Stderr,
        _ => return Ok(()),
    };
    let number = u32::try_from(word >> 32).unwrap_or(0);
    let refusal = match (word >> 8) & 0xff {
        1 => Refusal::Os(Errno::from_raw(i32::try_from(number).unwrap_or(libc::EIO))),
        2 => Refusal::Symlink,
        3 => Refusal::Fifo,
        4 => Refusal::NotRegular,
        5 => Refusal::Owner(number),
        6 => Refusal::Links,
        _ => Refusal::OutsideChroot,
    };
    Err((which, refusal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_is_discarded_and_the_mask_restored() {
        let before = SigSet::thread_get_mask().unwrap();
        // SIGXFSZ's default would end the test binary if it were ever delivered.
        let raised = holding(Signal::SIGXFSZ, || nix::sys::signal::raise(Signal::SIGXFSZ));
        assert_eq!(raised, Ok(()));
        assert!(!pending(Signal::SIGXFSZ));
        assert_eq!(SigSet::thread_get_mask().unwrap(), before);
    }

    #[test]
    fn reopen_outcomes_fit_in_a_word() {
        for outcome in [
            Ok(()),
            Err((Which::Stdout, Refusal::Os(Errno::EACCES))),
            Err((Which::Stderr, Refusal::Owner(65534))),
            Err((Which::Stderr, Refusal::Links)),
        ] {
            assert_eq!(decode(encode(outcome)), outcome);
        }
    }
}
