//! Helpers for the fixture binaries in `src/bin`: daemons that the integration tests in `tests/` start and
//! observe from outside, through /proc.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The file a fixture reports to: `$FIXTURE_OUT` (an absolute path, since the daemon changes directory).
pub fn out_path() -> Option<PathBuf> {
    std::env::var_os("FIXTURE_OUT").map(PathBuf::from)
}

/// Writes `text` to `$FIXTURE_OUT` atomically (a temporary file renamed over it), so that a test never
/// reads half a report.
pub fn report(text: &str) {
    if let Some(path) = out_path() {
        report_at(&path, text);
    }
}

/// [`report`] to a path read earlier (for a fixture that empties its environment).
pub fn report_at(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// `name` in the launcher's working directory, as an absolute path (the daemon changes directory, and the
/// runtime refuses relative paths): where the signal fixtures keep their pid and log files.
pub fn launch_dir_file(name: &str) -> PathBuf {
    std::env::current_dir()
        .unwrap_or_else(|e| {
            eprintln!("cannot read the working directory: {e}");
            std::process::exit(2)
        })
        .join(name)
}

/// Starts the builder's daemon, or prints `PROGRAM: ERROR` and exits 1 as `#[daemon]` does.
pub fn start_or_exit(daemon: daemon_runtime::Daemon, program: &str) -> daemon_runtime::Running {
    daemon.start().unwrap_or_else(|error| {
        eprintln!("{program}: {error}");
        std::process::exit(1)
    })
}

/// Reports this process's pid, then stays alive for the test to observe it (at most `$FIXTURE_LIFE`
/// seconds, 60 by default, so that a crashed test leaves nothing behind for long).
pub fn report_pid_and_wait() {
    report(&format!("{}\n", std::process::id()));
    linger();
}

/// Sleeps for the fixture's lifetime.
pub fn linger() {
    let secs = std::env::var("FIXTURE_LIFE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    std::thread::sleep(Duration::from_secs(secs));
}

/// What the benchmark subjects in `src/bin/bench_*.rs` share (see `benches/startup.rs`).
pub mod bench {
    use std::ffi::{OsStr, OsString};
    use std::io::Write;

    /// The FIFO path, the first argument of every subject; `name` is for the usage message.
    pub fn fifo(name: &str) -> OsString {
        std::env::args_os().nth(1).unwrap_or_else(|| {
            eprintln!("usage: {name} FIFO [ARGS]");
            std::process::exit(2)
        })
    }

    /// Writes this process's pid to the benchmark's FIFO in one write(2) (atomic: shorter than `PIPE_BUF`).
    /// A daemon opens the FIFO only now: it has closed every inherited fd. On failure the process exits 1
    /// (its stderr is /dev/null by now; the benchmark notices the missing report and says so).
    pub fn report(fifo: &OsStr) {
        let line = format!("{}\n", std::process::id());
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(fifo)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(error) = written {
            eprintln!("cannot report to {}: {error}", fifo.to_string_lossy());
            std::process::exit(1);
        }
    }
}

/// Ignores `signal` through the raw `rt_sigaction` system call, which takes the real-time signals glibc
/// keeps for itself (32 and 33) too: glibc's `sigaction(3)` refuses them with EINVAL. One system call on
/// values on the stack, so it may run in a `pre_exec` closure.
///
/// # Errors
///
/// The system call's error; `Unsupported` outside Linux on `x86_64` and aarch64.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn ignore_raw(signal: i32) -> std::io::Result<()> {
    /// The kernel's `struct sigaction` on `x86_64` and aarch64: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let ignore = KernelSigaction {
        handler: nix::libc::SIG_IGN,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads a kernel sigaction laid out as the kernel expects on these architectures,
    // with its 8-byte signal set; a null old action asks for nothing back. SIG_IGN runs no code.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_rt_sigaction,
            signal,
            &raw const ignore,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere there is no raw `rt_sigaction` to call.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn ignore_raw(_signal: i32) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
