use daemon_runtime::daemon;

// Neither an absolute path nor close to a sink's name: refused as a relative path.
#[daemon(stdout = "logs/app.out")]
fn main() {}
