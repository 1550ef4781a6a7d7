//! Whether the process runs more than one thread, before it forks: the child of a multi-threaded process
//! holds only the forking thread, and a lock another thread held at the fork (the allocator's, stdio's)
//! stays locked in it forever. Linux tells through /proc, or else through `unshare(2)`; macOS through
//! `proc_pidinfo`; FreeBSD through `sysctl(3)`. Where none can tell, the fork needs the caller's word,
//! given through an `unsafe` API ([`Daemon::start_unchecked`](crate::Daemon::start_unchecked)).

use crate::error::{Error, Step};

pub(crate) use policy::Policy;

mod policy {
    /// Whether the fork may trust the caller where the threads cannot be counted.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Policy {
        // Private, and in its own module: only the `unsafe` constructor makes a trusting policy.
        trusted: bool,
    }

    impl Policy {
        /// Refuse to fork unless the process is known to run one thread.
        pub(crate) const CHECK: Policy = Policy { trusted: false };

        /// Where the threads cannot be counted, fork on the caller's word.
        ///
        /// # Safety
        ///
        /// When the `Daemon` that carries this policy starts, the process must run exactly one thread.
        pub(crate) const unsafe fn trust_caller() -> Policy {
            Policy { trusted: true }
        }

        /// Whether an unknown count is taken as one thread.
        pub(crate) fn is_trusted(self) -> bool {
            self.trusted
        }
    }
}

/// What the OS says about the process's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    Exactly(u64),
    /// More than one, number unknown.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Several,
    Unknown,
}

const ADVICE: &str = "daemonize at the start of main, before any thread or async runtime starts";

/// Whether the OS says (without /proc) that the process runs exactly one thread; no when it cannot tell.
pub(crate) fn known_alone() -> bool {
    count() == Count::Exactly(1)
}

/// Refuses to fork a process that runs (or, unless `policy` trusts the caller, may run) more than one
/// thread. `from_proc` is the count /proc gave, when it could be read.
pub(crate) fn check(from_proc: Option<u64>, policy: Policy) -> Result<(), Error> {
    let count = from_proc.map_or_else(count, Count::Exactly);
    let refuse = |detail: String| Err(Error::new(Step::Threads, None, None).with_detail(detail));
    match count {
        Count::Exactly(n) if n <= 1 => Ok(()),
        Count::Exactly(n) => refuse(format!("{n} threads are running; {ADVICE}")),
        Count::Several => refuse(format!("more than one thread is running; {ADVICE}")),
        Count::Unknown if policy.is_trusted() => Ok(()),
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

/// Linux without /proc: unshare(2) refuses `CLONE_VM` with EINVAL when another thread (or a vfork parent)
/// shares the address space; for a process that runs alone it has nothing to unshare and changes nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn count() -> Count {
    // SAFETY: unshare(CLONE_VM) touches no memory of ours: it fails, or (single-threaded) does nothing.
    if unsafe { libc::unshare(libc::CLONE_VM) } == 0 {
        return Count::Exactly(1);
    }
    match nix::errno::Errno::last() {
        nix::errno::Errno::EINVAL => Count::Several,
        // EPERM under a seccomp filter that forbids unshare.
        _ => Count::Unknown,
    }
}

/// macOS and the other Apple systems: proc_pidinfo(PROC_PIDTASKINFO).
#[cfg(target_vendor = "apple")]
fn count() -> Count {
    let Ok(pid) = libc::pid_t::try_from(std::process::id()) else {
        return Count::Unknown;
    };
    let mut info = std::mem::MaybeUninit::<libc::proc_taskinfo>::zeroed();
    let Ok(size) = libc::c_int::try_from(std::mem::size_of::<libc::proc_taskinfo>()) else {
        return Count::Unknown;
    };
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`, which holds that many.
    let written = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTASKINFO,
            0,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if written != size {
        return Count::Unknown;
    }
    // SAFETY: the struct is plain integers, zeroed and then filled whole by proc_pidinfo.
    let info = unsafe { info.assume_init() };
    u64::try_from(info.pti_threadnum).map_or(Count::Unknown, Count::Exactly)
}

/// FreeBSD: sysctl kern.proc.pid.<pid>, whose one `kinfo_proc` counts the process's threads.
#[cfg(target_os = "freebsd")]
fn count() -> Count {
    let Ok(pid) = libc::c_int::try_from(std::process::id()) else {
        return Count::Unknown;
    };
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    let mut info = std::mem::MaybeUninit::<libc::kinfo_proc>::zeroed();
    let mut len = std::mem::size_of::<libc::kinfo_proc>();
    // SAFETY: sysctl reads the four-integer name and writes at most `len` bytes into `info`, which holds
    // that many, then stores the length it wrote in `len`.
    let result = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            info.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if result != 0 || len != std::mem::size_of::<libc::kinfo_proc>() {
        return Count::Unknown;
    }
    // SAFETY: the struct is integers, arrays and raw pointers, for which zeroes are valid, and sysctl
    // filled it whole.
    let info = unsafe { info.assume_init() };
    u64::try_from(info.ki_numthreads).map_or(Count::Unknown, Count::Exactly)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
)))]
fn count() -> Count {
    Count::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_proc() {
        assert!(check(Some(1), Policy::CHECK).is_ok());
        let error = check(Some(3), Policy::CHECK).unwrap_err();
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
        let error = check(None, Policy::CHECK).unwrap_err();
        assert!(
            error.to_string().contains("more than one thread"),
            "{error}"
        );
        // SAFETY: not forking here; only the policy's effect on an unknown count is tested below.
        let trusting = unsafe { Policy::trust_caller() };
        assert!(
            trusting.is_trusted(),
            "a trusting policy still refuses a known count"
        );
        assert!(check(None, trusting).is_err());
        stop.send(()).unwrap();
        thread.join().unwrap().unwrap();
    }
}
