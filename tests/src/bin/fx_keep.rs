//! `#[daemon(keep_fds = [5, 9])]`: the launcher inherits more fds; the daemon keeps exactly 5 and 9.
use daemon_runtime::daemon;

#[daemon(keep_fds = [5, 9])]
fn main() {
    tests::report_pid_and_wait();
}
