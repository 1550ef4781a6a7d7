//! A TCP echo server under tokio that daemonizes, keeps a pid file, and reports ready only once its socket
//! is bound: if the port is taken, the launcher prints the error and exits 1. It subscribes to signals
//! before reporting ready, so none is lost: SIGHUP reloads (here: re-reads the greeting each new client
//! gets first, from `/tmp/daemon-runtime-echo.greeting` if it exists) and acknowledges; SIGTERM or SIGINT
//! makes it stop accepting, finish its open connections (for up to 8 s) and return from `main`, which
//! removes the pid file.
//! Under systemd it runs as `Type=forking`, `Type=notify` or socket-activated (examples/systemd/:
//! echo-forking.service, echo-notify.service, echo.socket + echo.service). With `commands = true`, its
//! first argument may be `stop`, `status` or `reload` (acting on the running daemon), or `unit`, which
//! prints its Type=notify unit (echo-notify.service is that output; `unit launchd`, examples/launchd/),
//! and `install`, which puts it in place.
//!
//! With the control commands, `echo upgrade` replaces the running server by the binary on disk with no
//! connection refused: the new server gets the listening socket (`listen::share` registered it), and the
//! old one, told `Terminate(Term::Upgraded)`, stops accepting and finishes its open connections.
//!
//! ```text
//! cargo run --example echo            # returns once 127.0.0.1:7007 accepts connections
//! echo hello | nc -q1 127.0.0.1 7007  # hello
//! echo welcome > /tmp/daemon-runtime-echo.greeting
//! cargo run --example echo reload    # 0 once it re-read the greeting
//! echo hello | nc -q1 127.0.0.1 7007  # welcome, hello
//! cargo run --example echo upgrade   # upgraded (pid 4242 -> pid 4311)
//! cargo run --example echo stop
//! ```

use std::time::Duration;

use daemon_runtime::daemon;
use daemon_runtime::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Where the server listens; set `ECHO_ADDR` to change it.
const DEFAULT_ADDR: &str = "127.0.0.1:7007";

/// How long a server told to terminate finishes its open connections (the stop schedule's first wait is
/// longer, so it is not killed meanwhile).
const DRAIN: Duration = Duration::from_secs(8);

/// The configuration a reload re-reads: a line sent to every new client (none if the file is missing).
const GREETING: &str = "/tmp/daemon-runtime-echo.greeting";

fn read_greeting() -> std::io::Result<String> {
    match std::fs::read_to_string(GREETING) {
        Ok(text) => Ok(text.lines().next().unwrap_or_default().to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(error),
    }
}

#[daemon(
    readiness = "manual",
    watchdog = "auto",
    pid_file = "/tmp/daemon-runtime-echo.pid",
    stderr = "/tmp/daemon-runtime-echo.log",
    commands = true,
    stop_retry = "TERM/10/KILL/5"
)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines go to stderr: /dev/null here in fork mode, the journal under systemd (`RUST_LOG` filters).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Socket-activated (examples/systemd/echo.socket) or handed over by an upgrade, else bind the address
    // ourselves and register the socket for the next upgrade. An error here (address in use, permission
    // denied) reaches the launcher's terminal.
    let listener = if let Some(listener) = daemon_runtime::listen::tcp_listener("echo")? {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)?
    } else {
        let addr = std::env::var("ECHO_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_string());
        let listener = TcpListener::bind(&addr).await?;
        daemon_runtime::listen::share("echo", &listener)?;
        listener
    };
    let addr = listener.local_addr()?;
    // Before ready(): from the moment the launcher returns, SIGTERM and SIGHUP are events, never fatal.
    let mut signals = daemon_runtime::signals()?;
    let mut greeting = read_greeting()?;
    daemon_runtime::ready()?;
    // Shown by `systemctl status` (a no-op outside systemd).
    daemon_runtime::notify::set_status(format_args!("listening on {addr}"))?;
    log::info!("listening on {addr}");
    let mut connections = JoinSet::new();
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            signal = signals.recv() => match signal? {
                Signal::Reload => {
                    // On error the old greeting stays, and whoever asked for the reload hears why.
                    match read_greeting() {
                        Ok(new) => {
                            greeting = new;
                            daemon_runtime::signal::reloaded()?;
                            log::info!("reloaded");
                        }
                        Err(error) => {
                            log::error!("cannot reload {GREETING}: {error}");
                            let reason = format!("cannot read {GREETING}: {error}");
                            daemon_runtime::signal::reload_failed(reason)?;
                        }
                    }
                    continue;
                }
                Signal::Terminate(which) => {
                    // Stop accepting and finish what is open. Whoever keeps the socket accepts on it
                    // from now on: the new server after an upgrade (`Term::Upgraded`), the next start
                    // after a `systemctl restart` that kept it in the file descriptor store.
                    log::info!("{which:?}, finishing {} open connections", connections.len());
                    drop(listener);
                    let drained = tokio::time::timeout(DRAIN, async {
                        while connections.join_next().await.is_some() {}
                    });
                    if drained.await.is_err() {
                        log::warn!("{} connections still open after {DRAIN:?}", connections.len());
                    }
                    return Ok(());
                }
                _ => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let greeting = greeting.clone();
        connections.spawn(async move {
            if !greeting.is_empty()
                && stream
                    .write_all(format!("{greeting}\n").as_bytes())
                    .await
                    .is_err()
            {
                return;
            }
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
                        log::warn!("{peer}: {error}");
                        break;
                    }
                }
            }
        });
    }
}
