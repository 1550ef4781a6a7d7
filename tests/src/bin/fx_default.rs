//! `#[daemon]` with the defaults: reports its pid and stays alive.
use daemon_runtime::daemon;

#[daemon]
fn main() {
    tests::report_pid_and_wait();
}
