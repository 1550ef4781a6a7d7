#![deny(warnings)]

// `#[daemon]` re-emits itself below `#[tokio::main]` through the `crate` path, so a renamed runtime works.
use daemon_runtime as dr;

#[dr::daemon(crate = "dr", umask = 0o027)]
#[tokio::main(flavor = "current_thread")]
async fn main() {}
