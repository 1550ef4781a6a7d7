//! The writer of the sinks benchmark (`benches/sinks.rs`): `bench_sink SINK LINES ROUND REPORT` starts a
//! daemon with stderr on SINK (`journal`, `syslog`; `inherit`: in the foreground with stderr as
//! inherited, for `logger` or `systemd-cat` to carry), writes LINES lines `round ROUND line K of LINES ...`
//! to stderr, each formatted first and written at once (as `log`/`env_logger` do), then writes
//! `PID WALL_NS CPU_NS` (the writing loop's wall time and this process's CPU time over it) to REPORT.
use std::io::Write;
use std::time::Instant;

fn cpu_ns() -> u128 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into a live rusage.
    unsafe { nix::libc::getrusage(nix::libc::RUSAGE_SELF, &raw mut usage) };
    let ns = |t: nix::libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sink, lines, round, report] = args.as_slice() else {
        eprintln!("usage: bench_sink SINK LINES ROUND REPORT");
        std::process::exit(2)
    };
    let lines: u32 = lines.parse().expect("LINES");
    let daemon = match sink.as_str() {
        "inherit" => daemon_runtime::Daemon::new().foreground(true),
        sink => daemon_runtime::Daemon::new().stderr(sink),
    };
    let _running = tests::start_or_exit(daemon, "bench_sink");
    let (start, cpu) = (Instant::now(), cpu_ns());
    let mut stderr = std::io::stderr();
    let mut line = String::with_capacity(128);
    for k in 1..=lines {
        line.clear();
        let _ = std::fmt::Write::write_fmt(
            &mut line,
            format_args!(
                "round {round} line {k} of {lines}: the quick brown fox jumps over the lazy dog\n"
            ),
        );
        let _ = stderr.write_all(line.as_bytes());
    }
    let (wall, cpu) = (start.elapsed().as_nanos(), cpu_ns() - cpu);
    tests::report_at(
        std::path::Path::new(report),
        &format!("{} {wall} {cpu}\n", std::process::id()),
    );
}
