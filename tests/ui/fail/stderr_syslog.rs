use daemon_runtime::daemon;

// Meant as "send stderr to syslog": a relative path, which would create ./syslog wherever the launcher
// was started.
#[daemon(stderr = "syslog")]
fn main() {}
