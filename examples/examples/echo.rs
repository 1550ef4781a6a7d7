//! A TCP echo server under tokio that daemonizes, keeps a pid file, and reports ready only once its socket
//! is bound: if the port is taken, the launcher prints the error and exits 1. SIGTERM makes `main` return,
//! which removes the pid file.
//!
//! ```text
//! cargo run --example echo            # returns once 127.0.0.1:7007 accepts connections
//! echo hello | nc -q1 127.0.0.1 7007  # hello
//! kill "$(cat /tmp/daemon-runtime-echo.pid)"
//! ```

use daemon_runtime::daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// Where the server listens; set `ECHO_ADDR` to change it.
const DEFAULT_ADDR: &str = "127.0.0.1:7007";

#[daemon(
    ready = "manual",
    pid_file = "/tmp/daemon-runtime-echo.pid",
    stderr = "/tmp/daemon-runtime-echo.log"
)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ECHO_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_string());
    // An error here (address in use, permission denied) reaches the launcher's terminal.
    let listener = TcpListener::bind(&addr).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    daemon_runtime::ready()?;
    eprintln!("echo: listening on {addr}");
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = terminate.recv() => {
                eprintln!("echo: SIGTERM, stopping");
                return Ok(());
            }
        };
        tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) => break,
                    Ok(n) => {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        eprintln!("echo: {peer}: {error}");
                        break;
                    }
                }
            }
        });
    }
}
