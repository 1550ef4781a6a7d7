//! The single-thread contract for the environment: `setenv` and `unsetenv` are sound only while no other
//! thread may read the environment (a `getenv` elsewhere would read freed memory), so they take a
//! [`SingleThread`], which only a fork (the child runs one thread) or a count of the threads makes.

use std::ffi::OsStr;
use std::marker::PhantomData;

/// Proof that the process runs one thread, for as long as this value lives. It cannot leave the thread
/// that made it (it is neither `Send` nor `Sync`), and the runtime drops it before it starts a thread.
#[derive(Debug)]
pub(crate) struct SingleThread {
    _not_send: PhantomData<*const ()>,
}

// The receiver is the proof: the methods need it, not its contents.
#[allow(clippy::unused_self)]
impl SingleThread {
    /// # Safety
    ///
    /// The process runs one thread, and will until the value is dropped.
    pub(super) unsafe fn assume() -> SingleThread {
        SingleThread {
            _not_send: PhantomData,
        }
    }

    /// Removes `name` from the environment.
    pub(crate) fn remove_var(&self, name: impl AsRef<OsStr>) {
        // SAFETY: this value proves that no other thread runs, so none reads the environment meanwhile.
        unsafe { std::env::remove_var(name) };
    }
}
