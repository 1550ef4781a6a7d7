//! How many threads the process runs, asked without /proc: Linux through `unshare(2)`, macOS through
//! `proc_pidinfo`, FreeBSD through `sysctl(3)`. A count of one, or the caller's word where nothing can
//! count ([`Trust`]), makes a [`SingleThread`].

use super::env::SingleThread;
use super::proc_status::ProcStatus;

/// What the OS says about the process's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    Exactly(u64),
    /// More than one, number unknown.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Several,
    Unknown,
}

/// The caller's word that the process runs one thread, where the threads cannot be counted: made only by
/// the macro's glue for the program's entry (`#[daemon]` on a binary's root `main`) and by the unsafe
/// `Daemon::start_unchecked`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trust(());

impl Trust {
    /// # Safety
    ///
    /// When the daemon this is given to starts, the process runs exactly one thread.
    pub(crate) const unsafe fn assume() -> Trust {
        Trust(())
    }
}

/// One thread, as /proc's `status` says or, without it, as the OS says (or, where it cannot tell, as
/// `trust` promises); else the count, for the refusal. The count is taken here, never from the caller, so
/// that no code can make a `SingleThread` out of a number of its own.
pub(crate) fn alone(
    status: Option<&ProcStatus>,
    trust: Option<Trust>,
) -> Result<SingleThread, Count> {
    let count = status.map_or_else(count, |status| Count::Exactly(status.threads));
    let known = matches!(count, Count::Exactly(0 | 1));
    let trusted = count == Count::Unknown && trust.is_some();
    if known || trusted {
        // SAFETY: the count says one thread runs (only this one could start another, and it does not while
        // the token lives), or the caller promised it where nothing can count (`Trust`).
        Ok(unsafe { SingleThread::assume() })
    } else {
        Err(count)
    }
}

/// The process's thread count, as /proc's `status` says or, without it, as the OS says.
pub(crate) fn count_of(status: Option<&ProcStatus>) -> Count {
    status.map_or_else(count, |status| Count::Exactly(status.threads))
}

/// Linux without /proc: unshare(2) refuses `CLONE_VM` with EINVAL when another thread (or a vfork parent)
/// shares the address space; for a process that runs alone it has nothing to unshare and changes nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn count() -> Count {
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
pub(crate) fn count() -> Count {
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
pub(crate) fn count() -> Count {
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
pub(crate) fn count() -> Count {
    Count::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_word_counts_only_where_nothing_can_count() {
        // SAFETY: not forking here; only what the word is taken for is tested.
        let trust = unsafe { Trust::assume() };
        assert!(alone(Some(&ProcStatus::with_threads(1)), None).is_ok());
        assert!(alone(Some(&ProcStatus::with_threads(2)), Some(trust)).is_err());
    }
}
