use daemon_runtime::daemon;

#[daemon(nofile = [65536, 4096])]
fn main() {}
