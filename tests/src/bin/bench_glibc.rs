//! Benchmark subject `glibc`: daemon(3) through `nix::unistd::daemon(false, false)`, the cheapest incomplete
//! baseline: one fork (the launcher `_exit`s at once), setsid, chdir `/`, stdio on /dev/null, and nothing
//! else (no second fork, no fd closed, no signal reset, no readiness report).
//! `bench_glibc FIFO`: the daemon writes `PID\n` to FIFO (an absolute path), then exits.
use std::io::Write;

fn main() {
    let Some(fifo) = std::env::args_os().nth(1) else {
        eprintln!("usage: bench_glibc FIFO");
        std::process::exit(2);
    };
    if let Err(errno) = nix::unistd::daemon(false, false) {
        eprintln!("bench_glibc: daemon(3): {errno}");
        std::process::exit(1);
    }
    report(&fifo);
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
