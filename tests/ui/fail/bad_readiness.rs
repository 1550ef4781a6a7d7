use daemon_runtime::daemon;

#[daemon(readiness = "later")]
fn main() {}
