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
//! Every signal is blocked while it runs, so that no handler runs on the launcher's memory. A relay
//! left unwritten proves nothing (the intermediate may have died after its fork, or a tool such as
//! valgrind runs `CLONE_VFORK` as a plain fork, whose writes the launcher never sees): then the
//! handshake pipe decides, as after two plain forks.
//!
//! One thing an ordinary fork would carry over does not come through a `CLONE_VM` parent: the kernel
//! gives such a child no restartable-sequences (rseq) registration, so the daemon would start without
//! the one the C library made for the main thread, while the C library still believes it has it
//! (`sched_getcpu` would read a stale CPU, and per-CPU critical sections would run unprotected). So this
//! path is taken only where the launcher's registration is the C library's and known exactly
//! ([`Rseq::of_launcher`]), and the daemon registers the same area again as soon as `fork` has returned
//! (after the C library's fork-child code and the `pthread_atfork` child handlers, which run without it).
//!
//! `pthread_atfork` prepare and parent handlers run in the intermediate: their changes to memory reach
//! the launcher, but fds, threads or locks they open or close exist only in the intermediate.
//!
//! x86-64 Linux with glibc's rseq registration only (the module is compiled nowhere else). Elsewhere,
//! and where `clone` refuses these flags (a seccomp filter that allows only plain forks), the caller
//! forks twice instead.

use nix::errno::Errno;
use nix::unistd::Pid;

use super::env::SingleThread;

/// Which side of the double fork this process is on.
pub(crate) enum Side {
    /// The launcher. The pid is the intermediate's (exited), the leader of the daemon's session and
    /// process group.
    Launcher(Pid),
    /// The daemon: the intermediate's child, in a new session it does not lead, running one thread; the
    /// intermediate's pid (the session's id, which `setsid` returned to it before the fork: known without
    /// asking, and without the race of `getppid` against the intermediate's exit); the result of
    /// registering its rseq area again (a daemon without it must not run).
    Daemon(SingleThread, Pid, Result<(), Errno>),
}

/// Why the double fork failed.
pub(crate) enum Failure {
    /// The intermediate cannot be started this way here: fork twice instead.
    Unsupported,
    /// The intermediate (pid given, exited: reap it) failed to create a session.
    Setsid(Pid, Errno),
    /// The intermediate (pid given, exited: reap it) failed to fork.
    Fork(Pid, Errno),
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
/// As for `fork`, the process runs a single thread (the token proves it): another thread would run on the
/// memory the intermediate shares while the C library's `fork` holds its locks in it.
pub(crate) fn double_fork(_alone: &SingleThread) -> Result<Side, Failure> {
    let Some(rseq) = Rseq::of_launcher() else {
        return Err(Failure::Unsupported);
    };
    let saved = set_mask(u64::MAX).map_err(Failure::Clone)?;
    let mut relay = Relay {
        setsid: NOT_REACHED,
        fork: NOT_REACHED,
    };
    // SAFETY: a single thread (the token), every signal is blocked (just above), and `relay` lives until
    // the call returns.
    let returned = unsafe { clone_intermediate(&raw mut relay) };
    // The launcher and the daemon (which inherited the blocked mask) both get the mask back.
    if returned == 0 {
        // First thing back in Rust. (The C library's own fork-child code and the `pthread_atfork` child
        // handlers ran before, without it: one thread, every signal blocked, so only a `sched_getcpu`
        // there could read a stale CPU.)
        let registered = rseq.register();
        // The daemon's copy of `relay` was made by the fork, after `setsid` wrote to it.
        let intermediate = Pid::from_raw(i32::try_from(relay.setsid).unwrap_or(0));
        // SAFETY: the daemon is a forked child: it runs one thread.
        let alone = unsafe { SingleThread::assume() };
        return Ok(Side::Daemon(
            alone,
            intermediate,
            registered.and(set_mask(saved).map(drop)),
        ));
    }
    let restored = set_mask(saved);
    if returned < 0 {
        return Err(match errno_of(returned) {
            Errno::EPERM | Errno::ENOSYS | Errno::EINVAL => Failure::Unsupported,
            errno => Failure::Clone(errno),
        });
    }
    let intermediate = Pid::from_raw(i32::try_from(returned).unwrap_or(i32::MAX));
    // Only a failure the intermediate wrote down proves there is no daemon; anything else (an unwritten
    // relay included) is for the pipe to tell.
    match (relay.setsid, relay.fork) {
        (setsid, _) if setsid < 0 && setsid != NOT_REACHED => {
            return Err(Failure::Setsid(intermediate, errno_of(setsid)));
        }
        (_, fork) if fork < 0 && fork != NOT_REACHED => {
            return Err(Failure::Fork(intermediate, errno_of(fork)));
        }
        _ => {}
    }
    restored.map_err(Failure::Clone)?;
    Ok(Side::Launcher(intermediate))
}

fn errno_of(negative: i64) -> Errno {
    Errno::from_raw(i32::try_from(negative.unsigned_abs()).unwrap_or(libc::EINVAL))
}

/// The rseq flag that unregisters (linux/rseq.h).
const RSEQ_FLAG_UNREGISTER: libc::c_int = 1;
/// The signature glibc registers with on x86-64 (sysdeps/unix/sysv/linux/x86/bits/rseq.h; librseq's and the
/// kernel selftests' too): the kernel checks it before an rseq abort handler.
const RSEQ_SIG: u32 = 0x5305_3053;
/// Not `RSEQ_SIG`: an unregistration with it fails with EPERM where the area and length are right, and
/// unregisters nothing.
const NOT_THE_SIGNATURE: u32 = !RSEQ_SIG;

/// The C library's rseq registration of the launcher's (only) thread: where, and how long.
#[derive(Clone, Copy)]
struct Rseq {
    area: usize,
    len: u32,
}

impl Rseq {
    /// The launcher's registration, when it is glibc's (`__rseq_offset` from the thread pointer, a
    /// non-zero `__rseq_size`) and the kernel confirms the area and the length: an unregistration with the
    /// wrong signature fails with EPERM exactly when both are right (EINVAL otherwise), and changes
    /// nothing. `None` otherwise (no rseq, another C library, a registration made by someone else):
    /// there is no telling what the daemon would have to get back.
    fn of_launcher() -> Option<Rseq> {
        let (offset, size) = glibc_rseq_symbols();
        if offset.is_null() || size.is_null() {
            return None;
        }
        // SAFETY: glibc defines `__rseq_offset` as a `ptrdiff_t`, set before `main` and never written again.
        let offset = unsafe { *offset.cast::<isize>() };
        // SAFETY: likewise `__rseq_size`, an `unsigned int`.
        let size = unsafe { *size.cast::<u32>() };
        if size == 0 {
            return None;
        }
        let area = thread_pointer().checked_add_signed(offset)?;
        // glibc 2.35 to 2.39 register 32 bytes (the original `struct rseq`); later ones the feature size,
        // at least 32 (and a kernel may want it rounded up to the area's alignment). The first that the
        // kernel confirms wins: one system call where glibc registered 32 bytes.
        [32, size.max(32), size.next_multiple_of(32)]
            .into_iter()
            .map(|len| Rseq { area, len })
            .find(|rseq| rseq.call(RSEQ_FLAG_UNREGISTER, NOT_THE_SIGNATURE) == Err(Errno::EPERM))
    }

    /// Registers the area again for the calling thread, as the launcher's was. EBUSY means exactly this
    /// registration is there already (a tool that runs `CLONE_VFORK` as a plain fork would pass it on).
    fn register(self) -> Result<(), Errno> {
        match self.call(0, RSEQ_SIG) {
            Err(Errno::EBUSY) => Ok(()),
            other => other,
        }
    }

    fn call(self, flags: libc::c_int, signature: u32) -> Result<(), Errno> {
        // SAFETY: rseq(2) registers, or with RSEQ_FLAG_UNREGISTER checks and unregisters, the calling
        // thread's area; `area` is that thread's glibc rseq area in its TLS (the daemon's copy of it in the
        // daemon), valid for the thread's life, and `len` is the length glibc registered it with.
        let result =
            unsafe { libc::syscall(libc::SYS_rseq, self.area, self.len, flags, signature) };
        Errno::result(result).map(drop)
    }
}

/// The addresses of glibc's `__rseq_offset` and `__rseq_size` (glibc 2.35+), null where the C library
/// has none. Looked up at run time: a link-time reference, even a weak one, would make the program
/// require glibc 2.35 to load (the linker records the symbol's version as a hard requirement), where
/// the rest of the runtime runs on older ones.
fn glibc_rseq_symbols() -> (*const isize, *const u32) {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let offset = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()) };
    // SAFETY: as above.
    let size = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()) };
    (offset.cast_const().cast(), size.cast_const().cast())
}

/// The calling thread's thread pointer (x86-64: `fs:0` holds it, the TCB's pointer to itself).
fn thread_pointer() -> usize {
    let pointer: usize;
    // SAFETY: reads one word at fs:0, which the C library sets up for every thread before it runs.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:0", out(reg) pointer, options(nostack, readonly, preserves_flags));
    }
    pointer
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
            "movsxd rax, eax",         // a pid_t: the upper half of rax is not part of it
            "test rax, rax",
            "jz 2f",                   // the daemon, with rax 0
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
