#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(umask = 0x17)]
fn main() {}
