//! Benchmark subject `ours_full`: `Daemon::new()` with a pid file and stdout and stderr log files, then the
//! daemon reports. `bench_ours_full FIFO DIR`: the files are `DIR/ours_full.pid`, .out and .err; the daemon
//! writes `PID\n` to FIFO (an absolute path), then returns, which removes the pid file. See
//! tests/benches/startup.rs.
use std::path::PathBuf;

use daemon_runtime::Daemon;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(fifo), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_ours_full FIFO DIR");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let daemon = Daemon::new()
        .pid_file(dir.join("ours_full.pid"))
        .stdout(dir.join("ours_full.out"))
        .stderr(dir.join("ours_full.err"));
    let running = match daemon.start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("bench_ours_full: {error}");
            std::process::exit(1);
        }
    };
    tests::bench::report(&fifo);
    drop(running);
}
