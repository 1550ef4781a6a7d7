//! Whether the process runs more than one thread, before it forks: the child of a multi-threaded process
//! holds only the forking thread, and a lock another thread held at the fork (the allocator's, stdio's)
//! stays locked in it forever. Linux tells through /proc (launch/status.rs), or else through `unshare(2)`;
//! macOS through `proc_pidinfo`; FreeBSD through `sysctl(3)` (sys/threads.rs). Where none can tell, the
//! fork needs the caller's word ([`Trust`]), given through an `unsafe` API
//! ([`Daemon::start_unchecked`](crate::Daemon::start_unchecked)).

use crate::error::{Error, Step};
use crate::sys::env::SingleThread;
use crate::sys::proc_status::ProcStatus;
use crate::sys::threads::{Count, Trust, alone, count_of};

const ADVICE: &str = "daemonize at the start of main, before any thread or async runtime starts";

/// The proof that the process runs one thread, where the OS says so without /proc; `None` when it cannot
/// tell, or another thread runs.
pub(crate) fn known_alone() -> Option<SingleThread> {
    alone(None, None).ok()
}

/// Refuses to fork a process that runs (or, unless `trust` takes the caller's word, may run) more than
/// one thread; else the proof that it runs one. `status` is /proc's, when it could be read.
pub(crate) fn check(
    status: Option<&ProcStatus>,
    trust: Option<Trust>,
) -> Result<SingleThread, Error> {
    let count = match alone(status, trust) {
        Ok(alone) => return Ok(alone),
        Err(count) => count,
    };
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
/// and could still exec a setuid or file-capability program: review F9). `status` is /proc's, when it
/// could be read. Where nothing can count the threads, the process is taken at its word (it was
/// single-threaded at the fork, checked or promised).
pub(crate) fn check_alone(status: Option<&ProcStatus>, settings: &str) -> Result<(), Error> {
    let count = count_of(status);
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
    use crate::sys::threads::count;

    #[test]
    fn counts_from_proc() {
        assert!(check(Some(&ProcStatus::with_threads(1)), None).is_ok());
        let error = check(Some(&ProcStatus::with_threads(3)), None).unwrap_err();
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
