#![deny(warnings)]

// The server shape: `privileged` binds a port as root before the drop, and an `async fn main` under
// `#[tokio::main]` serves it. (Run in the foreground by tests/ui.rs, where nothing is dropped.)
use std::net::TcpListener;

use daemon_runtime::daemon;

fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

#[daemon(privileged = bind, core_dumps = false)]
#[tokio::main]
async fn main(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    assert_ne!(listener.local_addr()?.port(), 0);
    Ok(())
}
