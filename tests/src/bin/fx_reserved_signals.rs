//! Ignores the real-time signals glibc keeps for itself (32 and 33) through the raw `rt_sigaction` system
//! call (glibc's `sigaction(3)` refuses them with EINVAL), checks that the kernel shows them ignored, then
//! daemonizes with the builder and reports the daemon's pid. The daemon must have them back at `SIG_DFL`.
//! Exits 3 when the signals could not be ignored (then the test proves nothing, and says so).

/// The kernel's `struct sigaction` on `x86_64` and aarch64: handler, flags, restorer, mask.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn ignore_raw(signal: i32) -> std::io::Result<()> {
    let ignore = KernelSigaction {
        handler: nix::libc::SIG_IGN,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads a kernel sigaction laid out as the kernel expects on these architectures,
    // with its 8-byte signal set; a null old action asks for nothing back. SIG_IGN runs no code of ours.
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

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn ignore_raw(_signal: i32) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// `SigIgn` of /proc/self/status: bit `n - 1` set when signal `n` is ignored.
fn ignored_now() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

fn main() {
    let reserved = (1u64 << 31) | (1u64 << 32);
    let ignored = ignore_raw(32).and_then(|()| ignore_raw(33));
    if let Err(error) = ignored {
        eprintln!("fx_reserved_signals: cannot ignore signals 32 and 33: {error}");
        std::process::exit(3);
    }
    if ignored_now().is_none_or(|mask| mask & reserved != reserved) {
        eprintln!("fx_reserved_signals: the kernel does not show signals 32 and 33 ignored");
        std::process::exit(3);
    }
    let _running = match daemon_runtime::Daemon::new().start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("fx_reserved_signals: {error}");
            std::process::exit(1);
        }
    };
    tests::report_pid_and_wait();
}
