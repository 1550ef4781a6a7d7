//! The double fork without copying the launcher: the intermediate process (the one that calls `setsid`
//! and forks the daemon) shares the launcher's memory instead of getting a copy of it.
//!
//! A plain `fork` copies the launcher's page tables for the intermediate, and the intermediate's exit
//! tears the copy down again, all on the way to ready. Here the launcher starts the intermediate with
//! `clone(CLONE_VM | CLONE_VFORK)`, as `vfork` does: the launcher is suspended until the intermediate
//! exits, and the intermediate, on the launcher's stack below its stack pointer, makes four calls:
//! `setsid`, the C library's `fork` (which creates the daemon as a copy of the shared memory, with all
//! the bookkeeping of an ordinary `fork`: the daemon's own thread id in the C library, its robust-futex
//! list, the `pthread_atfork` handlers), `sched_yield` (on a single CPU the daemon, which the time to
//! ready waits for, runs before the launcher wakes up), and `exit_group`. The daemon returns from `fork`
//! with the launcher's registers and stack pointer, so the launcher and the daemon both leave
//! [`double_fork`] as the two sides of an ordinary `fork` would.
//!
//! The intermediate runs no Rust code: it is a few instructions of assembly, so the compiler never sees
//! a function return twice. It tells the launcher what `setsid` and `fork` returned through a [`Relay`]
//! in the shared memory, read once the launcher resumes (the intermediate has exited by then: no race).
//! Every signal is blocked while it runs, so that no handler runs on the launcher's memory.
//!
//! x86-64 Linux only (the module is compiled nowhere else). Where `clone` refuses these flags (a seccomp
//! filter that allows only plain forks), the caller forks twice instead.

use nix::errno::Errno;
use nix::unistd::Pid;

/// Which side of the double fork this process is on.
pub(crate) enum Side {
    /// The launcher. The pid is the intermediate's (exited), the leader of the daemon's session and
    /// process group.
    Launcher(Pid),
    /// The daemon: the intermediate's child, in a new session it does not lead.
    Daemon,
}

/// Why the double fork failed.
pub(crate) enum Failure {
    /// The intermediate cannot be started this way here: fork twice instead.
    Unsupported,
    /// The intermediate (pid given, exited: reap it) failed to create a session.
    Setsid(Pid, Errno),
    /// The intermediate (pid given, exited: reap it) failed to fork, or died before it could.
    Fork(Pid, Option<Errno>),
    /// `clone` or the signal mask failed (no memory, too many processes).
    Clone(Errno),
}

/// What the intermediate tells the launcher, written in the shared memory: a return value, or `-errno`.
/// [`NOT_REACHED`] until the intermediate writes it.
#[repr(C)]
struct Relay {
    setsid: i64,
    fork: i64,
}

/// A value no system call returns: the intermediate died before this step.
const NOT_REACHED: i64 = i64::MIN;

/// The size of the kernel's signal set on x86-64: 64 signals (the C library's `sigset_t` is larger).
const KERNEL_SIGSET_SIZE: libc::c_long = 8;

/// Forks the daemon through an intermediate process that shares this process's memory (see the module).
///
/// # Safety
///
/// As for `fork`: the process must run a single thread. Another thread would run on the memory the
/// intermediate shares while the C library's `fork` holds its locks in it.
pub(crate) unsafe fn double_fork() -> Result<Side, Failure> {
    let saved = set_mask(u64::MAX).map_err(Failure::Clone)?;
    let mut relay = Relay {
        setsid: NOT_REACHED,
        fork: NOT_REACHED,
    };
    // SAFETY: the caller guarantees a single thread, every signal is blocked (just above), and `relay`
    // lives until the call returns.
    let returned = unsafe { clone_intermediate(&raw mut relay) };
    // The launcher and the daemon (which inherited the blocked mask) both get the mask back.
    let restored = set_mask(saved);
    if returned == 0 {
        if restored.is_err() {
            // A daemon with every signal blocked would ignore SIGTERM: end it (the launcher reports a
            // daemon that closed the pipe without a word).
            // SAFETY: _exit ends the process at once; it has no preconditions.
            unsafe { libc::_exit(1) }
        }
        return Ok(Side::Daemon);
    }
    if returned < 0 {
        return Err(match errno_of(returned) {
            Errno::EPERM | Errno::ENOSYS | Errno::EINVAL => Failure::Unsupported,
            errno => Failure::Clone(errno),
        });
    }
    let intermediate = Pid::from_raw(i32::try_from(returned).unwrap_or(i32::MAX));
    match (relay.setsid, relay.fork) {
        (NOT_REACHED, _) => return Err(Failure::Fork(intermediate, None)),
        (setsid, _) if setsid < 0 => return Err(Failure::Setsid(intermediate, errno_of(setsid))),
        (_, NOT_REACHED) => return Err(Failure::Fork(intermediate, None)),
        (_, fork) if fork < 0 => return Err(Failure::Fork(intermediate, Some(errno_of(fork)))),
        _ => {}
    }
    restored.map_err(Failure::Clone)?;
    Ok(Side::Launcher(intermediate))
}

fn errno_of(negative: i64) -> Errno {
    Errno::from_raw(i32::try_from(negative.unsigned_abs()).unwrap_or(libc::EINVAL))
}

/// Sets the calling thread's signal mask, as the kernel sees it (a bit per signal, signal `n` at bit
/// `n - 1`), by the raw system call: the C library's wrappers would leave out the two signals it
/// reserves (32 and 33). Returns the old mask.
fn set_mask(mask: u64) -> Result<u64, Errno> {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask reads the 8-byte `mask` and writes the 8-byte `old`, the size given.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const mask,
            &raw mut old,
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(result).map(|_| old)
}

/// Starts the intermediate with `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` on this process's stack.
/// Returns, in the launcher once the intermediate has exited, the intermediate's pid or clone's
/// `-errno`; in the daemon, 0. `relay` then holds what `setsid` and `fork` returned in the intermediate.
///
/// # Safety
///
/// The process runs a single thread with every signal blocked, and `relay` is valid for writes.
unsafe fn clone_intermediate(relay: *mut Relay) -> i64 {
    const FLAGS: i64 = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as i64;
    let returned: i64;
    // SAFETY: the asm block returns once in the launcher and once in the daemon, as `fork` does, with
    // the registers the compiler expects:
    // - the launcher: the kernel keeps every register across `clone` but rax (the output), rcx and r11
    //   (clobbered, declared by `clobber_abi("C")`); while it is suspended, the intermediate writes
    //   only `relay` (valid for writes: the caller's contract) and the stack below the launcher's stack
    //   pointer, which an asm block without `nostack` may use (the compiler keeps nothing there, nor in
    //   a red zone, across such a block);
    // - the daemon: it leaves `fork` with the intermediate's registers, which are the launcher's (a
    //   `clone` child starts with its parent's) but for the caller-saved ones that the calls clobber,
    //   declared by `clobber_abi("C")`; r12, callee-saved and so kept across `fork`, holds `relay`, an
    //   input nothing changes; the stack pointer is the launcher's (`clone` without a new stack keeps
    //   it, and a call returns with it), aligned for a call as an asm block without `nostack` gets it.
    // The intermediate runs with every signal blocked (the caller's contract), and exits without
    // returning.
    unsafe {
        std::arch::asm!(
            "syscall",                 // clone(FLAGS, the same stack, no tids, no tls)
            "test rax, rax",
            "jnz 2f",                  // the launcher: the intermediate's pid, or -errno
            // The intermediate.
            "mov eax, {sys_setsid}",
            "syscall",
            "mov qword ptr [r12], rax",
            "test rax, rax",
            "js 3f",
            "call {fork}",
            "test eax, eax",
            "jz 2f",                   // the daemon, with rax 0
            "movsxd rax, eax",
            "mov qword ptr [r12 + 8], rax",
            "jns 4f",
            "call {errno_location}",
            "movsxd rax, dword ptr [rax]",
            "neg rax",
            "mov qword ptr [r12 + 8], rax",
            "jmp 3f",
            "4:",
            "mov eax, {sys_sched_yield}",
            "syscall",
            "3:",
            "xor edi, edi",
            "mov eax, {sys_exit_group}",
            "syscall",
            "ud2",
            "2:",
            sys_setsid = const libc::SYS_setsid,
            sys_sched_yield = const libc::SYS_sched_yield,
            sys_exit_group = const libc::SYS_exit_group,
            fork = sym libc::fork,
            errno_location = sym libc::__errno_location,
            inlateout("rax") libc::SYS_clone => returned,
            in("rdi") FLAGS,
            in("rsi") 0_i64,
            in("rdx") 0_i64,
            in("r10") 0_i64,
            in("r8") 0_i64,
            in("r12") relay,
            clobber_abi("C"),
        );
    }
    returned
}
