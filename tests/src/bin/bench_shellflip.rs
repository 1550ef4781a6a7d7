//! Benchmark subject: the upgrade benchmark's echo server (answers each line with `PID LINE`) on
//! shellflip 2, Cloudflare's graceful-restart crate, as its restarter example does it, plus the
//! listening socket carried over (shellflip spawns the new process from the old one, which inherits the
//! socket: it is kept without close-on-exec; its number goes through shellflip's hand-over pipe).
//!
//! `bench_shellflip SOCKET ADDR [REPORT]` serves on ADDR (appending `PID PORT` to REPORT once it listens);
//! `bench_shellflip SOCKET restart` asks the running server to restart, through the coordination socket.
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use async_trait::async_trait;
use shellflip::lifecycle::{LifecycleHandler, PipeWriter, receive_from_old_process};
use shellflip::{RestartConfig, ShutdownCoordinator, ShutdownHandle, ShutdownSignal};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

struct Handover {
    listener: RawFd,
}

#[async_trait]
impl LifecycleHandler for Handover {
    async fn send_to_new_process(&mut self, mut pipe: PipeWriter) -> std::io::Result<()> {
        pipe.write_i32(self.listener).await?;
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = args.get(1).expect("SOCKET").clone();
    if args.get(2).map(String::as_str) == Some("restart") {
        let config = RestartConfig {
            enabled: true,
            coordination_socket_path: socket.into(),
            ..Default::default()
        };
        match config.request_restart().await {
            Ok(pid) => println!("restarted: {pid}"),
            Err(error) => {
                eprintln!("bench_shellflip: restart failed: {error}");
                std::process::exit(1);
            }
        }
        return;
    }
    let inherited = match receive_from_old_process() {
        Some(mut pipe) => Some(pipe.read_i32().await.expect("the listener's number")),
        None => None,
    };
    let listener = match inherited {
        Some(fd) => {
            // SAFETY: the old process handed this number over: the listener it inherited to us, which
            // nothing else in this process owns.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener.set_nonblocking(true).expect("nonblocking");
            tokio::net::TcpListener::from_std(listener).expect("tokio listener")
        }
        None => tokio::net::TcpListener::bind(args.get(2).expect("ADDR"))
            .await
            .expect("bind"),
    };
    // Inherited by the process a restart spawns (shellflip spawns it before the hand-over).
    nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .expect("inheritable listener");
    let config = RestartConfig {
        enabled: true,
        coordination_socket_path: socket.into(),
        lifecycle_handler: Box::new(Handover {
            listener: listener.as_raw_fd(),
        }),
        ..Default::default()
    };
    let restart = config.try_into_restart_task().expect("restart task");
    tokio::pin!(restart);
    let pid = std::process::id();
    if let Some(report) = args.get(3) {
        let port = listener.local_addr().expect("address").port();
        tests::report_at(std::path::Path::new(report), &format!("{pid} {port}\n"));
    }
    let shutdown = ShutdownCoordinator::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(echo(stream, pid, shutdown.handle()));
                }
            }
            restarted = &mut restart => {
                if let Err(error) = restarted {
                    eprintln!("bench_shellflip: {error}");
                }
                drop(listener);
                shutdown.shutdown().await;
                return;
            }
        }
    }
}

async fn echo(stream: tokio::net::TcpStream, pid: u32, handle: std::sync::Arc<ShutdownHandle>) {
    let _signal = ShutdownSignal::from(&*handle);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("{pid} {line}\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
}
