#![deny(warnings)]

extern crate daemon_runtime as dr;

#[dr::daemon(crate = "dr", umask = 0o027)]
fn main() {}
