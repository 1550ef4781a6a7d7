//! `#[tokio::main]` above `#[daemon]`: the fork must still happen before the runtime starts its threads.
use daemon_runtime::daemon;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
#[daemon]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pid = tokio::spawn(async { std::process::id() }).await?;
    tests::report(&format!("{pid}\n"));
    tokio::task::spawn_blocking(tests::linger).await?;
    Ok(())
}
