use daemon_runtime::daemon;

#[daemon(core_dumps = "false")]
fn main() {}
