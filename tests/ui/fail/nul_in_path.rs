use daemon_runtime::daemon;

#[daemon(pid_file = "/tmp\0x")]
fn main() {}
