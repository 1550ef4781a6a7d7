//! `#[daemon]` above `#[tokio::main]`: the fork must happen before the runtime starts its threads.
use daemon_runtime::daemon;

#[daemon]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pid = tokio::spawn(async { std::process::id() })
        .await
        .expect("the spawned task ran");
    tests::report(&format!("{pid}\n"));
    tokio::task::spawn_blocking(tests::linger)
        .await
        .expect("lingered");
}
