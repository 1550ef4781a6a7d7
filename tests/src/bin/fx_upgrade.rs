//! An echo server with the control commands whose listening socket is handed over on `upgrade` (the
//! builder, tokio started after the fork). Environment:
//! - `FX_PID_FILE`: the pid file (required).
//! - `FIXTURE_OUT`: each daemon appends `PID PORT` there once it is ready.
//! - `FX_FAIL` (seen by the new daemon of an upgrade, which inherits `upgrade`'s environment): `exit` (exits
//!   3 before ready), `panic`, `error` (reports "bad config: line 3" before ready), `hang` (never ready).
//! - `FX_READY_MS`: how long the daemon prepares before it is ready.
//! - `FX_READY_TIMEOUT_S`: the launcher's (and `upgrade`'s) ready timeout, default 10.
//! - `FX_ADDR`: where to listen when no socket is handed over (default `127.0.0.1:0`).
//! - `FX_USER`: the user to switch to; `FX_CORE_DUMPS=0`: `core_dumps(false)` (not dumpable).
//! - `FX_FORGE_PID` (in the new daemon of an upgrade): before the start, writes a pid record naming that
//!   pid on the channel to `upgrade`, as a process of the daemon's user that took the channel would.
//!
//! It answers each line with `PID LINE`, so a client sees which daemon served it. On
//! `Terminate(Upgraded)` it stops accepting, finishes its open connections and exits; on any other
//! Terminate it exits at once.
use std::time::Duration;

use daemon_runtime::signal::{Signal, Term};
use daemon_runtime::{Daemon, Readiness};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;

fn main() {
    if let Ok(victim) = std::env::var("FX_FORGE_PID") {
        forge_pid(victim.parse().expect("FX_FORGE_PID"));
    }
    let pid_file = std::env::var_os("FX_PID_FILE").expect("FX_PID_FILE");
    let timeout = std::env::var("FX_READY_TIMEOUT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut daemon = Daemon::new();
    if let Ok(user) = std::env::var("FX_USER") {
        daemon = daemon.user(user);
    }
    if std::env::var("FX_CORE_DUMPS").as_deref() == Ok("0") {
        daemon = daemon.core_dumps(false);
    }
    let started = daemon
        .pid_file(pid_file)
        .commands(true)
        .readiness(Readiness::Manual)
        .ready_timeout(Duration::from_secs(timeout))
        .stop_retry("TERM/10/KILL/5")
        .start();
    let _running = match started {
        Ok(running) => running,
        Err(error) => {
            eprintln!("fx_upgrade: {error}");
            std::process::exit(1);
        }
    };
    match std::env::var("FX_FAIL").as_deref() {
        Ok("exit") => std::process::exit(3),
        Ok("panic") => panic!("the new configuration is broken"),
        Ok("error") => {
            daemon_runtime::not_ready("bad config: line 3");
            std::process::exit(1);
        }
        Ok("hang") => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve());
}

/// Writes a pid record (tag `P`, length 4, the pid) on the descriptor `DAEMON_UPGRADE` names as `report=`.
fn forge_pid(victim: u32) {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;
    let handover = std::env::var("DAEMON_UPGRADE").unwrap_or_default();
    let Some(fd) = handover
        .split_whitespace()
        .find_map(|field| field.strip_prefix("report=")?.parse::<i32>().ok())
    else {
        return;
    };
    let mut record = vec![b'P', 4, 0];
    record.extend_from_slice(&victim.to_le_bytes());
    // SAFETY: the descriptor is inherited and open; ManuallyDrop keeps it open for the runtime.
    let mut channel = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    channel.write_all(&record).expect("forge a pid record");
}

async fn serve() {
    let listener = if let Some(listener) =
        daemon_runtime::listen::tcp_listener("echo").expect("handed over")
    {
        listener.set_nonblocking(true).expect("nonblocking");
        tokio::net::TcpListener::from_std(listener).expect("tokio listener")
    } else {
        let addr = std::env::var("FX_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_string());
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|error| panic!("bind {addr}: {error}"));
        daemon_runtime::listen::share("echo", &listener).expect("share");
        listener
    };
    let port = listener.local_addr().expect("local address").port();
    let mut signals = daemon_runtime::signals().expect("signals");
    if let Some(ms) = std::env::var("FX_READY_MS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    daemon_runtime::ready().expect("ready");
    tests::report(&format!("{} {port}\n", std::process::id()));
    let pid = std::process::id();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if write.write_all(format!("{pid} {line}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
            signal = signals.recv() => match signal.expect("signal") {
                Signal::Terminate(Term::Upgraded) => {
                    drop(listener);
                    let _ = tokio::time::timeout(Duration::from_secs(8), async {
                        while connections.join_next().await.is_some() {}
                    })
                    .await;
                    return;
                }
                Signal::Terminate(_) => return,
                _ => {}
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
