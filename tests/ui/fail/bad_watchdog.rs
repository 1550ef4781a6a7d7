use daemon_runtime::daemon;

#[daemon(watchdog = "sometimes")]
fn main() {}
