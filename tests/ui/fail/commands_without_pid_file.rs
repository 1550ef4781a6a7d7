use daemon_runtime::daemon;

#[daemon(umask = 0o027, commands = true)]
fn main() {}
