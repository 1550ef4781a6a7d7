#![deny(warnings)]
use daemon_runtime::daemon;

#[daemon]
fn main() -> ! {
    std::process::exit(0)
}
