#![deny(warnings)]
//! The attributes and doc comments on `main` survive the expansion: without the `#[allow]` below, the
//! unused variable would be an error under `#![deny(warnings)]`.

use daemon_runtime::daemon;

/// The daemon's entry point.
#[daemon(umask = 0o022)]
#[allow(unused_variables)]
#[inline(never)]
fn main() {
    let unused = 1;
}
