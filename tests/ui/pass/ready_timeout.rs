#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(ready_timeout = 5)]
fn main() {}
