use daemon_runtime::daemon;

#[daemon(readiness = "manaul")]
fn main() {}
