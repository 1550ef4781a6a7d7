//! Holding back a signal that a system call of ours would raise: SIGPIPE when the launcher has gone,
//! SIGXFSZ past `RLIMIT_FSIZE`. Both are sent to the calling thread, so blocking them in this thread only
//! (other threads and the process's dispositions are left alone) turns them into an error return
//! (EPIPE, EFBIG); the instance the call raised is then taken off the pending set, so that it is never
//! delivered later, whatever the program's disposition (`SIG_DFL` kills).

use std::mem::MaybeUninit;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// Runs `call` with `signal` blocked in this thread, then discards the instance `call` raised (one that
/// was already pending before is left for the program), and restores the thread's mask.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_is_discarded_and_the_mask_restored() {
        let before = SigSet::thread_get_mask().unwrap();
        // SIGXFSZ's default would end the test binary if it were ever delivered.
        let raised = holding(Signal::SIGXFSZ, || {
            // SAFETY: raise(3) sends a signal to this thread; it is blocked here, so it stays pending.
            unsafe { libc::raise(libc::SIGXFSZ) }
        });
        assert_eq!(raised, 0);
        assert!(!pending(Signal::SIGXFSZ));
        assert_eq!(SigSet::thread_get_mask().unwrap(), before);
    }
}
