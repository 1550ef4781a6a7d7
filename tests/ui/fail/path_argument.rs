use daemon_runtime::daemon;

#[daemon(foo::bar)]
fn main() {}
