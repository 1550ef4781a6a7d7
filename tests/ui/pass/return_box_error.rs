#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}
