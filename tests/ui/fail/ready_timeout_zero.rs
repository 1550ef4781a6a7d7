use daemon_runtime::daemon;

#[daemon(ready_timeout = 0)]
fn main() {}
