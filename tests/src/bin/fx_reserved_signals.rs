//! Ignores the real-time signals glibc keeps for itself (32 and 33) through the raw `rt_sigaction` system
//! call (glibc's `sigaction(3)` refuses them with EINVAL), checks that the kernel shows them ignored, then
//! daemonizes with the builder and reports the daemon's pid. The daemon must have them back at `SIG_DFL`.
//! Exits 3 when the signals could not be ignored (then the test proves nothing, and says so).

/// `SigIgn` of /proc/self/status: bit `n - 1` set when signal `n` is ignored.
fn ignored_now() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

fn main() {
    let reserved = (1u64 << 31) | (1u64 << 32);
    let ignored = tests::ignore_raw(32).and_then(|()| tests::ignore_raw(33));
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
