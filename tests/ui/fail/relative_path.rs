use daemon_runtime::daemon;

#[daemon(pid_file = "run/app.pid")]
fn main() {}
