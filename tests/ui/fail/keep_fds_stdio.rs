use daemon_runtime::daemon;

#[daemon(keep_fds = [1])]
fn main() {}
