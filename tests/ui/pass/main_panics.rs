#![deny(warnings)]

// A body that ends in a panic (here caught by a hook that exits 0, so that the case can run).
use daemon_runtime::daemon;

#[daemon(umask = 0o027)]
fn main() {
    std::panic::set_hook(Box::new(|_| std::process::exit(0)));
    panic!("the daemon gives up")
}
