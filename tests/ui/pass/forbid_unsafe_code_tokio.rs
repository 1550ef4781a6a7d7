//! `#![forbid(unsafe_code)]` with an async main under tokio, `#[daemon]` below the runtime's attribute.
#![forbid(unsafe_code)]
#![deny(warnings)]

use daemon_runtime::daemon;

#[tokio::main(flavor = "current_thread")]
#[daemon]
async fn main() {}
