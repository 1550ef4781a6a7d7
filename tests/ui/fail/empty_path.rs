use daemon_runtime::daemon;

#[daemon(workdir = "")]
fn main() {}
