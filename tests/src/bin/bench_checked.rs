//! Benchmark subject `checked`: `fork` 0.11's `checked_daemon`, the fastest complete peer: double fork with
//! `setsid`, inherited fds closed, stdio on /dev/null, chdir `/`, signal dispositions and mask reset, and a
//! readiness pipe: its launcher exits only after the daemon's `notify_ready()`.
//! `bench_checked FIFO`: the daemon reports ready, then writes `PID\n` to FIFO (an absolute path) and exits.
//! See tests/benches/startup.

use std::time::Duration;

use fork::{CheckedDaemon, DaemonOptions, checked_daemon};

fn main() {
    let fifo = tests::bench::fifo("bench_checked");
    let mut options = DaemonOptions::new();
    let configured = options
        .current_directory("/")
        .and_then(DaemonOptions::redirect_standard_io_to_null);
    if let Err(error) = configured {
        eprintln!("bench_checked: {error}");
        std::process::exit(1);
    }
    match checked_daemon(options, Duration::from_secs(10)) {
        Ok(CheckedDaemon::Parent(_)) => std::process::exit(0),
        Ok(CheckedDaemon::Daemon(notifier)) => {
            if notifier.notify_ready().is_err() {
                std::process::exit(1);
            }
            tests::bench::report(&fifo);
        }
        Err(error) => {
            eprintln!("bench_checked: {error}");
            std::process::exit(1);
        }
    }
}
