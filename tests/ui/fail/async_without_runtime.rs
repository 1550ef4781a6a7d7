use daemon_runtime::daemon;
use std::time::Duration;

#[daemon]
async fn main() -> std::io::Result<()> {
    let _pause = Duration::from_secs(1);
    Ok(())
}
