#![deny(warnings)]

// `#[tokio::main]` above `#[daemon]`, a body that ends in a call that never returns, and one that
// panics (both shapes under the runtime's attribute).
use daemon_runtime::daemon;

async fn serve() -> ! {
    tokio::task::yield_now().await;
    std::process::exit(0)
}

#[tokio::main(flavor = "current_thread")]
#[daemon]
async fn main() {
    if std::env::args().count() > 1 {
        panic!("not reached: trybuild passes no arguments")
    }
    serve().await
}
