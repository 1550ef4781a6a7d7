//! Benchmark subject `glibc`: daemon(3) through `nix::unistd::daemon(false, false)`, the cheapest incomplete
//! baseline: one fork (the launcher `_exit`s at once), setsid, chdir `/`, stdio on /dev/null, and nothing
//! else (no second fork, no fd closed, no signal reset, no readiness report).
//! `bench_glibc FIFO`: the daemon writes `PID\n` to FIFO (an absolute path), then exits.

fn main() {
    let fifo = tests::bench::fifo("bench_glibc");
    if let Err(errno) = nix::unistd::daemon(false, false) {
        eprintln!("bench_glibc: daemon(3): {errno}");
        std::process::exit(1);
    }
    tests::bench::report(&fifo);
}
