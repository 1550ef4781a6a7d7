use daemon_runtime::daemon;

#[daemon(user = "nobody", ambient_caps = true)]
fn main() {}
