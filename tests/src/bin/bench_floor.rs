//! Benchmark subject `floor`: starts and reports without daemonizing, the cost of merely running a program.
//! `bench_floor FIFO`: writes `PID\n` to FIFO (an absolute path), then exits. See tests/benches/startup.rs.
use std::io::Write;

fn main() {
    let Some(fifo) = std::env::args_os().nth(1) else {
        eprintln!("usage: bench_floor FIFO");
        std::process::exit(2);
    };
    report(&fifo);
}

/// Writes this process's pid to the benchmark's FIFO in one write(2) (atomic: shorter than PIPE_BUF).
fn report(fifo: &std::ffi::OsStr) {
    let line = format!("{}\n", std::process::id());
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(error) = written {
        eprintln!(
            "bench_floor: cannot report to {}: {error}",
            fifo.to_string_lossy()
        );
        std::process::exit(1);
    }
}
