use daemon_runtime::daemon;

#[daemon(env = ["RUST_LOG", "A=B"])]
fn main() {}
