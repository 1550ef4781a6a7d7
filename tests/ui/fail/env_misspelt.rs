use daemon_runtime::daemon;

#[daemon(env = "cleen")]
fn main() {}
