#![deny(warnings)]

// The async server shape that never returns: `#[daemon]` above `#[tokio::main]`.
use daemon_runtime::daemon;

#[daemon(umask = 0o027)]
#[tokio::main]
async fn main() {
    let mut rounds = 0;
    loop {
        rounds += 1;
        if rounds > 1 {
            std::process::exit(0);
        }
        tokio::task::yield_now().await;
    }
}
