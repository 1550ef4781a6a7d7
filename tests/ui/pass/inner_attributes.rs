//! Inner attributes at the top of main's body keep applying to it: without the `#![allow]`, the unused
//! variable would be an error under `#![deny(warnings)]`.
#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon]
fn main() {
    #![allow(unused_variables)]
    let unused = 1;
}
