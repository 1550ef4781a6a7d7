//! `#[daemon]` on `main`, in a program where a thread started before `main`: an `.init_array`
//! constructor starts it, as an `LD_PRELOAD`ed agent or the `ctor` crate would. The start must be refused
//! (the fork would keep only the main thread, and whatever that thread held locked stays locked): if it
//! is not, the daemon reports its pid and stays.
use std::ffi::c_void;

use daemon_runtime::daemon;

extern "C" fn sleeper(_: *mut c_void) -> *mut c_void {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

extern "C" fn start_thread() {
    let mut thread: nix::libc::pthread_t = 0;
    // SAFETY: `thread` is valid memory for the new thread's id; null attributes and argument are allowed;
    // `sleeper` has the signature pthread_create expects.
    let started = unsafe {
        nix::libc::pthread_create(
            &raw mut thread,
            std::ptr::null(),
            sleeper,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(started, 0, "pthread_create in a constructor");
}

/// Run by the C runtime before `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static START_THREAD: extern "C" fn() = start_thread;

#[daemon]
fn main() {
    tests::report_pid_and_wait();
}
