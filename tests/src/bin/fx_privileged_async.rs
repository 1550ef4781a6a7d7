//! The async server shape with privileges: `#[daemon(user = "nobody", privileged = bind)]` above
//! `#[tokio::main]` on `async fn main(listener: TcpListener)`. Binds 127.0.0.4:80 as root, reports
//! `PID`, then answers each connection with `uid=N` from a tokio task, as nobody.
use std::net::TcpListener;

use daemon_runtime::daemon;
use tokio::io::AsyncWriteExt;

fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.4:80")
}

#[daemon(user = "nobody", privileged = bind, readiness = "manual")]
#[tokio::main]
async fn main(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tests::report(&format!("{}\n", std::process::id()));
    daemon_runtime::ready()?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let uid = nix::unistd::Uid::effective();
            let _ = stream.write_all(format!("uid={uid}\n").as_bytes()).await;
        });
    }
}
