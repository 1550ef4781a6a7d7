use daemon_runtime::daemon;

#[daemon(umask = 0o027 workdir = "/")]
fn main() {}
