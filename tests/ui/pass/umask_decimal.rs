#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(umask = 23)]
fn main() {}
