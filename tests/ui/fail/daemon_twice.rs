use daemon_runtime::daemon;

#[daemon(umask = 0o027)]
#[daemon_runtime::daemon]
fn main() {}
