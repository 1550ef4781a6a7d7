#![deny(warnings)]

use daemon_runtime as dr;

#[dr::daemon(crate = "dr")]
fn main() {}
