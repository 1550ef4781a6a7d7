use daemon_runtime::daemon;

#[daemon(ready = "manaul")]
fn main() {}
