//! Benchmark subject `ours`: `#[daemon]` with the defaults, then the daemon reports.
//! `bench_ours FIFO`: the daemon writes `PID\n` to FIFO (an absolute path: the daemon runs in `/`), then
//! exits. See benches/startup.rs.
use daemon_runtime::daemon;

#[daemon]
fn main() {
    tests::bench::report(&tests::bench::fifo("bench_ours"));
}
