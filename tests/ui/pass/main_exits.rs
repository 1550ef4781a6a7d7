#![deny(warnings)]

// A body that ends the process itself.
use daemon_runtime::daemon;

#[daemon]
fn main() {
    std::process::exit(0)
}
