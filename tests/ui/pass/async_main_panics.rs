#![deny(warnings)]

// An async body that ends in a panic (caught by a hook that exits 0, so that the case can run).
use daemon_runtime::daemon;

#[daemon]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    std::panic::set_hook(Box::new(|_| std::process::exit(0)));
    panic!("the daemon gives up")
}
