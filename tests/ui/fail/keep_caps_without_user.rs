use daemon_runtime::daemon;

#[daemon(keep_caps = ["net_bind_service"])]
fn main() {}
