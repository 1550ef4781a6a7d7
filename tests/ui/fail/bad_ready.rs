use daemon_runtime::daemon;

#[daemon(ready = "later")]
fn main() {}
