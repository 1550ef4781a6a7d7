use daemon_runtime::daemon;

#[daemon(stdout = "syslog:daemn")]
fn main() {}
