//! The runtime's attribute imported by name (`use tokio::main; #[main]`, as tokio's docs show) is
//! recognised as one: any attribute whose path ends in `main` or `test`.
#![deny(warnings)]

use daemon_runtime::daemon;
use tokio::main;

#[daemon(umask = 0o027)]
#[main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tokio::task::yield_now().await;
    Ok(())
}
