//! Benchmark subject `ours`: `Daemon::new().start()` with the defaults, then the daemon reports.
//! `bench_ours FIFO`: the daemon writes `PID\n` to FIFO (an absolute path: the daemon runs in `/` and
//! has closed every inherited fd, so it opens the FIFO only now), then exits. See tests/benches/startup.rs.
use std::io::Write;

use daemon_runtime::Daemon;

fn main() {
    let Some(fifo) = std::env::args_os().nth(1) else {
        eprintln!("usage: bench_ours FIFO");
        std::process::exit(2);
    };
    let running = match Daemon::new().start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("bench_ours: {error}");
            std::process::exit(1);
        }
    };
    report(&fifo);
    drop(running);
}

/// Writes this process's pid to the benchmark's FIFO in one write(2) (atomic: shorter than PIPE_BUF).
fn report(fifo: &std::ffi::OsStr) {
    let line = format!("{}\n", std::process::id());
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if written.is_err() {
        // stderr is /dev/null here; the benchmark notices the missing report and says so.
        std::process::exit(1);
    }
}
