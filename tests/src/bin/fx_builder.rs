//! The builder, configured from the command line, for the tests of every key:
//! `fx_builder [--pid-file P] [--stdout P] [--stderr P] [--user U] [--group G] [--chroot D] [--workdir D]
//! [--umask OCTAL] [--keep-fd N] [--timeout-secs N] [--own-file P] [--close-stdio] [--thread] [--manual]
//! [--foreground-flag 0|1] [--force-fork] [--atfork] [--atfork-parent-exit] [--then ACTION]`, where ACTION is `wait` (the default: report the
//! pid and stay), `print` (print a line on stdout and stderr, then as `wait`), `panic` (report, then panic),
//! `try-root` (report the pid and whether setuid(0) succeeded, then stay), `sigpipe-ready` (with `--manual`:
//! SIGPIPE back to `SIG_DFL`, report the pid, wait for the file `$FIXTURE_OUT.go`, call `ready()`, report
//! `PID ready=RESULT`, then stay), `ids` (report `PID tid=T gettid=G atfork=N rseq_launcher=R rseq=R
//! cpus=C`: the thread id the C library holds for the daemon's thread, the kernel's, how many times the
//! `pthread_atfork` child handler that `--atfork` registers has run in this process's line, whether the
//! launcher's and the daemon's main thread have the C library's rseq area registered (`yes`, `no`, or
//! `unknown` without glibc's rseq), and whether `sched_getcpu()` agreed with the `getcpu` system call on
//! every CPU the daemon was pinned to (`agree` or `differ`); then stay). `--atfork-parent-exit` registers
//! a `pthread_atfork` parent handler that `_exit(0)`s in any process but the launcher (the intermediate).
//! `--foreground-flag` passes a flag to `foreground()` as a CLI would.
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use daemon_runtime::Daemon;

/// Runs of the `pthread_atfork` child handler (`--atfork`), inherited by each child with the memory.
static FORKED_CHILDREN: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_child() {
    FORKED_CHILDREN.fetch_add(1, Ordering::Relaxed);
}

/// The launcher's pid, for `--atfork-parent-exit`.
static LAUNCHER: AtomicU32 = AtomicU32::new(0);

extern "C" fn exit_unless_launcher() {
    if std::process::id() != LAUNCHER.load(Ordering::Relaxed) {
        // SAFETY: _exit ends the process at once; it has no preconditions.
        unsafe { nix::libc::_exit(0) }
    }
}

/// Whether the calling thread has glibc's rseq area registered with the kernel: an unregistration with
/// the wrong signature fails with EPERM exactly when the area and length are the registered ones (and
/// unregisters nothing).
fn rseq_registered() -> &'static str {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let offset = unsafe { nix::libc::dlsym(nix::libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()) };
    // SAFETY: as above.
    let size = unsafe { nix::libc::dlsym(nix::libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()) };
    if offset.is_null() || size.is_null() {
        return "unknown";
    }
    // SAFETY: glibc's `__rseq_offset` is a ptrdiff_t, set before main and never written again.
    let offset = unsafe { *offset.cast::<isize>() };
    // SAFETY: pthread_self has no preconditions; on x86-64 and aarch64 glibc it is the thread pointer.
    let area = (unsafe { nix::libc::pthread_self() } as usize).wrapping_add_signed(offset);
    // SAFETY: with RSEQ_FLAG_UNREGISTER (1) and a signature that is not the registered one, rseq(2) only
    // checks the registration: it unregisters nothing and writes nothing.
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_rseq, area, 32, 1, !0x5305_3053_u32) };
    if result == -1 && nix::errno::Errno::last() == nix::errno::Errno::EPERM {
        "yes"
    } else {
        "no"
    }
}

/// Pins the calling thread to each CPU it may run on in turn and compares the C library's
/// `sched_getcpu()` (which reads the rseq area when one is registered) with the `getcpu` system call.
fn cpus_agree() -> &'static str {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut allowed: nix::libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<nix::libc::cpu_set_t>();
    // SAFETY: sched_getaffinity writes at most `size` bytes into `allowed`.
    if unsafe { nix::libc::sched_getaffinity(0, size, &raw mut allowed) } != 0 {
        return "unknown";
    }
    let mut verdict = "agree";
    for cpu in 0..nix::libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
        if !unsafe { nix::libc::CPU_ISSET(cpu, &allowed) } {
            continue;
        }
        // SAFETY: as above.
        let mut one: nix::libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
        unsafe { nix::libc::CPU_SET(cpu, &mut one) };
        // SAFETY: sched_setaffinity reads `size` bytes of `one`.
        if unsafe { nix::libc::sched_setaffinity(0, size, &raw const one) } != 0 {
            continue;
        }
        let mut kernel: u32 = u32::MAX;
        // SAFETY: getcpu writes the CPU number into `kernel`; the node and cache pointers may be null.
        unsafe {
            nix::libc::syscall(
                nix::libc::SYS_getcpu,
                &raw mut kernel,
                std::ptr::null_mut::<u32>(),
                std::ptr::null_mut::<u8>(),
            )
        };
        // SAFETY: sched_getcpu has no preconditions.
        let library = unsafe { nix::libc::sched_getcpu() };
        if u32::try_from(library) != Ok(kernel) {
            verdict = "differ";
        }
    }
    // SAFETY: as above, the set the thread had.
    unsafe { nix::libc::sched_setaffinity(0, size, &raw const allowed) };
    verdict
}

fn main() {
    let mut daemon = Daemon::new();
    let mut then = String::from("wait");
    let mut owned = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&flag));
        daemon = match flag.as_str() {
            "--pid-file" => daemon.pid_file(value()),
            "--stdout" => daemon.stdout(value()),
            "--stderr" => daemon.stderr(value()),
            "--user" => daemon.user(value()),
            "--group" => daemon.group(value()),
            "--chroot" => daemon.chroot(value()),
            "--workdir" => daemon.workdir(value()),
            "--umask" => {
                daemon.umask(u32::from_str_radix(&value(), 8).unwrap_or_else(|_| usage(&flag)))
            }
            "--keep-fd" => daemon.keep_fds([value().parse().unwrap_or_else(|_| usage(&flag))]),
            "--timeout-secs" => daemon.ready_timeout(std::time::Duration::from_secs(
                value().parse().unwrap_or_else(|_| usage(&flag)),
            )),
            "--own-file" => {
                // A file this program opens (close-on-exec, as Rust opens every fd) before start(): the
                // builder must leave it open and working in the daemon.
                owned = Some(
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(value())
                        .unwrap_or_else(|_| usage(&flag)),
                );
                daemon
            }
            "--close-stdio" => {
                // As if launched with `<&- >&-`: the runtime's pipe may land on 0 or 1.
                // SAFETY: nothing in this program uses stdin afterwards, and no Rust object owns fd 0.
                unsafe { nix::libc::close(0) };
                // SAFETY: std's stdout handle writes to whatever fd 1 becomes, nothing is printed before
                // start(), and no Rust object owns fd 1.
                unsafe { nix::libc::close(1) };
                daemon
            }
            "--manual" => daemon.readiness(daemon_runtime::Readiness::Manual),
            "--foreground-flag" => daemon.foreground(value() == "1"),
            "--force-fork" => daemon.force_fork(),
            "--atfork-parent-exit" => {
                LAUNCHER.store(std::process::id(), Ordering::Relaxed);
                // SAFETY: the handler only reads an atomic and calls _exit, both async-signal-safe.
                let registered =
                    unsafe { nix::libc::pthread_atfork(None, Some(exit_unless_launcher), None) };
                assert_eq!(registered, 0, "pthread_atfork");
                daemon
            }
            "--atfork" => {
                // SAFETY: the handler only does an atomic add, which is async-signal-safe.
                let registered =
                    unsafe { nix::libc::pthread_atfork(None, None, Some(count_child)) };
                assert_eq!(registered, 0, "pthread_atfork");
                daemon
            }
            "--then" => {
                then = value();
                daemon
            }
            "--thread" => {
                // A second thread: daemonizing must be refused.
                std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(5)));
                daemon
            }
            _ => usage(&flag),
        };
    }
    let rseq_launcher = rseq_registered();
    let running = match daemon.start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("fx_builder: {error}");
            std::process::exit(1);
        }
    };
    let pid = std::process::id();
    if let Some(mut file) = owned {
        writeln!(file, "owned file still open in {pid}")
            .expect("the owned file works in the daemon");
    }
    match then.as_str() {
        "print" => {
            println!("stdout line from {pid}");
            eprintln!("stderr line from {pid}");
            let _ = std::io::stdout().flush();
            tests::report_pid_and_wait();
        }
        "panic" => {
            tests::report(&format!("{pid}\n"));
            panic!("fixture panic in {pid}");
        }
        "try-root" => {
            let regained = nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok();
            tests::report(&format!("{pid} regained={regained}\n"));
            tests::linger();
        }
        "sigpipe-ready" => {
            // The common idiom of a program that wants to die quietly on a closed pipe.
            // SAFETY: signal(2) with SIG_DFL installs no handler; this program runs no other thread.
            unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL) };
            tests::report(&format!("{pid}\n"));
            let go =
                std::path::PathBuf::from(format!("{}.go", tests::out_path().unwrap().display()));
            // At most 30 s, so that a crashed test leaves nothing behind for long.
            for _ in 0..6000 {
                if go.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let result = daemon_runtime::ready();
            tests::report(&format!("{pid} ready={result:?}\n"));
            tests::linger();
        }
        "ids" => {
            // The C library keeps the thread's id in its thread descriptor (a fork updates it in the child);
            // a thread's CPU clock id encodes that id: `(!tid << 3) | 6` (clock_getcpuclockid(3), Linux).
            let mut clock: nix::libc::clockid_t = 0;
            // SAFETY: pthread_self has no preconditions.
            let this = unsafe { nix::libc::pthread_self() };
            // SAFETY: `this` is the calling thread, alive; `clock` is valid memory for the result.
            let got = unsafe { nix::libc::pthread_getcpuclockid(this, &raw mut clock) };
            assert_eq!(got, 0, "pthread_getcpuclockid");
            let tid = !(clock >> 3);
            let gettid = nix::unistd::gettid();
            let atfork = FORKED_CHILDREN.load(Ordering::Relaxed);
            let rseq = rseq_registered();
            let cpus = cpus_agree();
            tests::report(&format!(
                "{pid} tid={tid} gettid={gettid} atfork={atfork} rseq_launcher={rseq_launcher} \
                 rseq={rseq} cpus={cpus}\n"
            ));
            tests::linger();
        }
        _ => tests::report_pid_and_wait(),
    }
    drop(running);
}

fn usage(flag: &str) -> ! {
    eprintln!("fx_builder: bad or incomplete argument {flag}");
    std::process::exit(2)
}
