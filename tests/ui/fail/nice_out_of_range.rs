use daemon_runtime::daemon;

#[daemon(nice = 20)]
fn main() {}
