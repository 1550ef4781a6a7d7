use daemon_runtime::daemon;

#[daemon(workdri = "/")]
fn main() {}
