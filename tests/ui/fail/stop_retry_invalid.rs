use daemon_runtime::daemon;

#[daemon(pid_file = "/run/app.pid", stop_retry = "TERM/soon/KILL/5")]
fn main() {}
