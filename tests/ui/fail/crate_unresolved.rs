use daemon_runtime::daemon;

#[daemon(crate = "daemon_runtim")]
fn main() {}
