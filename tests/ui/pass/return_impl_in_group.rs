//! A return type that mentions `impl Trait` inside parentheses (a group of tokens) is left to inference,
//! as a bare `impl Trait` is: a closure's return type cannot name it.
#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon]
#[allow(unused_parens)]
fn main() -> Result<(), (impl std::fmt::Debug)> {
    Ok::<(), std::io::Error>(())
}
