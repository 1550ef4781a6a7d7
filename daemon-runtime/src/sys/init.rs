//! PID 1 in a container: the process stays PID 1 as a minimal init (as tini and `docker --init` do) and
//! the program runs as its only child, with ordinary signal semantics.
//!
//! Why: the kernel delivers a signal to a namespace's PID 1 only if PID 1 installed a handler for it, so
//! a program that handles nothing would ignore `docker stop`'s SIGTERM and Ctrl-C. Emulating the default
//! action from a handler in the program itself cannot tell whether the program, `tokio::signal` or
//! `signal-hook` will want the signal later, and reaping orphans there would steal the program's own
//! `Child::wait`. As a child of the init, the program gets the default actions back (SIGTERM ends it, or
//! its handler runs its shutdown), and the orphans that the kernel gives to PID 1 are the init's children,
//! never the program's: reaping them cannot take the status of a child the program waits for.
//!
//! The init blocks every signal and takes them with sigwaitinfo(2): no handler runs in it, so there is no
//! async-signal-safety to get wrong. It forwards each signal to the program, except SIGCHLD (its own) and
//! the ones a terminal sends to its whole foreground process group (the program, which shares the init's
//! group, has received those already). When the program exits, the init reaps whatever else is there and
//! exits with the program's status: its exit code, or 128 + N after a death by signal N (PID 1 cannot die
//! of a signal the way the program did). After such a death the program could not remove its pid file:
//! the init does, once no process holds the lock.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::env::SingleThread;

/// Signals a terminal sends to its foreground process group, which the program is in too.
const FROM_TERMINAL: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGWINCH];

/// Forks the program off a minimal init that stays PID 1: returns in the program (the child); the init
/// itself never returns. Once the program is gone, the init calls `clean_up(pid_file)` (to remove a pid
/// file the program left), then exits with the program's status. A plain function and a path: nothing
/// the init runs after closing its descriptors can hold one of the program's objects.
pub(crate) fn become_init(
    _alone: &SingleThread,
    clean_up: fn(&Path) -> bool,
    pid_file: Option<&Path>,
) -> Result<(), Errno> {
    let fail = |errno| errno;
    // Blocked before the fork, so that no signal sent to PID 1 in between is dropped (the kernel drops
    // signals to PID 1 that have no handler, but keeps blocked ones pending).
    let mut previous = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    )
    .map_err(fail)?;
    // SAFETY: the process runs a single thread (the token proves it), so the child is a full copy of the
    // only thread.
    match unsafe { fork() } {
        Err(errno) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
            Err(fail(errno))
        }
        Ok(ForkResult::Child) => {
            // Signals that came in since the block are delivered now, to the program.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None).map_err(fail)?;
            Ok(())
        }
        Ok(ForkResult::Parent { child }) => {
            close_fds();
            let code = supervise(child);
            if let Some(pid_file) = pid_file {
                let _ = clean_up(pid_file);
            }
            // _exit: no destructors or atexit handlers, no second flush of buffers the program filled
            // before the fork.
            // SAFETY: _exit ends the process at once; it has no preconditions.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The init keeps no fd but stdio (a socket or pipe held open here would outlive the program's close).
fn close_fds() {
    // SAFETY: close_range(2) closes fds this process no longer uses (the program has its own copies): the
    // init runs only `supervise`, `clean_up` (which opens its own) and `_exit` from here, so no object of
    // the program's is used again in this process. An old kernel (ENOSYS) leaves them open, which only
    // delays an EOF until the init exits with the program.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// Forwards signals to `child` and reaps every child until `child` exits; returns the exit status the
/// init should have.
fn supervise(child: Pid) -> i32 {
    let all = SigSet::all();
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value for the kernel to overwrite.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigwaitinfo(2) reads the set and writes one siginfo_t, both live locals.
        let signal = unsafe { libc::sigwaitinfo(all.as_ref(), &raw mut info) };
        if signal < 0 {
            continue; // EINTR (a stop and continue of the init)
        }
        if signal == libc::SIGCHLD {
            if let Some(code) = reap(child) {
                return code;
            }
        } else if !(info.si_code == libc::SI_KERNEL && FROM_TERMINAL.contains(&signal)) {
            // SAFETY: kill(2) with a pid and a signal number; the pid is our child, which cannot be
            // reused before we reap it.
            unsafe { libc::kill(child.as_raw(), signal) };
        }
    }
}

/// Reaps every child that has exited (the program, and orphans the kernel gave to PID 1); the program's
/// status once it is among them.
fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == child => code = Some(status),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                code = Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return code,
            Ok(_) | Err(_) => {}
        }
    }
}
