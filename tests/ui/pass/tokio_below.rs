#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(umask = 0o027)]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    tokio::task::spawn(async { 1 + 1 }).await.map_err(std::io::Error::other)?;
    Ok(())
}
