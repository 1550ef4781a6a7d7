use daemon_runtime::daemon;

#[daemon(stderr = "/var/log/app.log", reopen_logs_on = "SIGUSR")]
fn main() {}
