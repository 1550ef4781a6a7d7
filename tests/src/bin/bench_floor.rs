//! Benchmark subject `floor`: starts and reports without daemonizing, the cost of merely running a program.
//! `bench_floor FIFO`: writes `PID\n` to FIFO, then exits. See benches/startup.rs.

fn main() {
    tests::bench::report(&tests::bench::fifo("bench_floor"));
}
