//! A network daemon as they are usually written: bind port 80 as root, then serve it as `nobody`.
//!
//! Run it as root (`sudo -E cargo run --example hello`), then `curl http://127.0.0.1/` answers "hello".
//! `bind_port` runs as root before the drop (`privileged`); `main` gets its listener and runs as
//! `nobody` with no capability, no core dumps, `no_new_privs`, and only `RUST_LOG` and `HELLO_ADDR` from
//! the environment. It logs with `log` and `env_logger` to stderr, which is
//! `/tmp/daemon-runtime-hello.log` (`tail -f` it); `kill "$(cat /tmp/daemon-runtime-hello.pid)"` stops it
//! and removes the pid file. After `mv /tmp/daemon-runtime-hello.log{,.1}`,
//! `kill -USR1 "$(cat /tmp/daemon-runtime-hello.pid)"` (`reopen_logs_on`, what logrotate's `postrotate`
//! would send) makes it write to a new file; so does a request to `/reopen` (`logs::reopen()`).
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use daemon_runtime::daemon;

/// As root, before the drop: the only code that needs privileges.
fn bind_port() -> std::io::Result<TcpListener> {
    let addr = std::env::var("HELLO_ADDR").unwrap_or_else(|_| "127.0.0.1:80".into());
    TcpListener::bind(addr)
}

#[daemon(
    pid_file = "/tmp/daemon-runtime-hello.pid",
    stdout = "/tmp/daemon-runtime-hello.log",
    stderr = "/tmp/daemon-runtime-hello.log",
    user = "nobody",
    privileged = bind_port,
    core_dumps = false,
    no_new_privs = true,
    env = ["RUST_LOG", "HELLO_ADDR"],
    reopen_logs_on = "SIGUSR1",
    readiness = "manual"
)]
fn main(listener: TcpListener) -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Subscribed before ready(): a SIGTERM sent as soon as the launcher returns is an event too.
    let signals = daemon_runtime::signals()?;
    daemon_runtime::ready()?;
    log::info!(
        "serving http://{} as uid {}",
        listener.local_addr()?,
        effective_uid()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            match stream.and_then(answer) {
                Ok(path) => log::info!("answered GET {path}"),
                Err(error) => log::warn!("a connection failed: {error}"),
            }
        }
    });
    for signal in signals {
        match signal {
            daemon_runtime::Signal::Terminate(term) => {
                log::info!("{term:?}: stopping");
                break;
            }
            daemon_runtime::Signal::Reload => daemon_runtime::signal::reloaded()?,
            _ => {}
        }
    }
    Ok(())
}

/// Answers one HTTP request with "hello"; `/reopen` reopens the log files first.
fn answer(mut stream: TcpStream) -> std::io::Result<String> {
    let mut request = String::new();
    BufReader::new(&stream).read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path == "/reopen" {
        match daemon_runtime::logs::reopen() {
            Ok(()) => log::info!("log files reopened"),
            Err(error) => log::error!("{error}"),
        }
    }
    stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")?;
    Ok(path)
}

/// The effective uid, from /proc (the example needs no other crate for it).
fn effective_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string()
}
