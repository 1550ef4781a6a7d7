#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(readiness = "manual")]
fn main() -> Result<(), daemon_runtime::Error> {
    daemon_runtime::ready()?;
    Ok(())
}
