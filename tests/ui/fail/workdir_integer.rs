use daemon_runtime::daemon;

#[daemon(workdir = 1)]
fn main() {}
