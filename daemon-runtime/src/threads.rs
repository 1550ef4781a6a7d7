//! Whether the process runs more than one thread, before it forks: the child of a multi-threaded process
//! holds only the forking thread, and a lock another thread held at the fork (the allocator's, stdio's)
//! stays locked in it forever. Linux tells through /proc (launch/status.rs), or else through `unshare(2)`;
//! macOS through `proc_pidinfo`; FreeBSD through `sysctl(3)` (sys/threads.rs). Where none can tell, the
//! fork needs the caller's word ([`Trust`]), given through an `unsafe` API
//! ([`Daemon::start_unchecked`](crate::Daemon::start_unchecked)).

use crate::error::{Error, Step};
use crate::sys::env::SingleThread;
use crate::sys::threads::{Count, Trust, alone, count};

const ADVICE: &str = "daemonize at the start of main, before any thread or async runtime starts";

/// Whether the OS says (without /proc) that the process runs exactly one thread; no when it cannot tell.
pub(crate) fn known_alone() -> bool {
    count() == Count::Exactly(1)
}

/// Refuses to fork a process that runs (or, unless `trust` takes the caller's word, may run) more than
/// one thread; else the proof that it runs one. `from_proc` is the count /proc gave, when it could be
/// read.
pub(crate) fn check(from_proc: Option<u64>, trust: Option<Trust>) -> Result<SingleThread, Error> {
    let count = from_proc.map_or_else(count, Count::Exactly);
    if let Some(alone) = alone(count, trust) {
        return Ok(alone);
    }
    let refuse = |detail: String| Err(Error::new(Step::Threads, None, None).with_detail(detail));
    match count {
        Count::Exactly(n) => refuse(format!("{n} threads are running; {ADVICE}")),
        Count::Several => refuse(format!("more than one thread is running; {ADVICE}")),
        Count::Unknown => refuse(format!(
            "the number of threads cannot be read on this system (on Linux: mount /proc), so the fork \
             would be unchecked; if the process runs one thread, call the unsafe \
             `Daemon::start_unchecked` instead; {ADVICE}"
        )),
    }
}

/// Before `no_new_privs` and the bounding-set drop of `keep_caps`, which the kernel applies to the calling
/// thread only: refuses when another thread runs (one the privileged code started would keep neither,
/// and could still exec a setuid or file-capability program: review F9). `from_proc` is the count /proc
/// gave. Where nothing can count the threads, the process is taken at its word (it was single-threaded
/// at the fork, checked or promised).
pub(crate) fn check_alone(from_proc: Option<u64>, settings: &str) -> Result<(), Error> {
    let count = from_proc.map_or_else(count, Count::Exactly);
    let running = match count {
        Count::Exactly(n) if n > 1 => format!("{n} threads are running"),
        Count::Several => "more than one thread is running".to_string(),
        Count::Exactly(_) | Count::Unknown => return Ok(()),
    };
    Err(Error::new(Step::Threads, None, None).with_detail(format!(
        "{running} before {settings}, which apply to one thread: the others would keep what they \
         take away. The privileged code must not leave threads behind (join them before it returns)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_proc() {
        assert!(check(Some(1), None).is_ok());
        let error = check(Some(3), None).unwrap_err();
        assert_eq!(error.step(), Step::Threads);
        assert!(
            error.to_string().contains("3 threads are running"),
            "{error}"
        );
    }

    #[test]
    fn sees_a_second_thread_without_proc() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || stopped.recv());
        // The thread is alive until it receives; the harness may run more.
        let count = count();
        assert!(
            matches!(count, Count::Several | Count::Exactly(2..)),
            "{count:?}"
        );
        let error = check(None, None).unwrap_err();
        assert!(
            error.to_string().contains("more than one thread"),
            "{error}"
        );
        stop.send(()).unwrap();
        thread.join().unwrap().unwrap();
    }
}
