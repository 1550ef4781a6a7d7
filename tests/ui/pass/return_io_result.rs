#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon]
fn main() -> std::io::Result<()> {
    Ok(())
}
