//! The builder, configured from the command line, for the tests of every key:
//! `fx_builder [--pid-file P] [--stdout P] [--stderr P] [--user U] [--group G] [--chroot D] [--workdir D]
//! [--umask OCTAL] [--keep-fd N] [--timeout-secs N] [--own-file P] [--close-stdio] [--thread] [--manual]
//! [--foreground-flag 0|1] [--force-fork] [--atfork] [--then ACTION]`, where ACTION is `wait` (the default: report the
//! pid and stay), `print` (print a line on stdout and stderr, then as `wait`), `panic` (report, then panic),
//! `try-root` (report the pid and whether setuid(0) succeeded, then stay), `sigpipe-ready` (with `--manual`:
//! SIGPIPE back to `SIG_DFL`, report the pid, wait for the file `$FIXTURE_OUT.go`, call `ready()`, report
//! `PID ready=RESULT`, then stay), `ids` (report `PID tid=T gettid=G atfork=N`: the thread id the C library
//! holds for the daemon's thread, the kernel's, and how many times the `pthread_atfork` child handler that
//! `--atfork` registers has run in this process's line; then stay). `--foreground-flag` passes a flag to
//! `foreground()` as a CLI would.
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use daemon_runtime::Daemon;

/// Runs of the `pthread_atfork` child handler (`--atfork`), inherited by each child with the memory.
static FORKED_CHILDREN: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_child() {
    FORKED_CHILDREN.fetch_add(1, Ordering::Relaxed);
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
            "--manual" => daemon.ready(daemon_runtime::Ready::Manual),
            "--foreground-flag" => daemon.foreground(value() == "1"),
            "--force-fork" => daemon.force_fork(),
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
            tests::report(&format!(
                "{pid} tid={tid} gettid={gettid} atfork={atfork}\n"
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
