//! The async server users write first: `#[daemon]` above `#[tokio::main]`, an `async fn main` with no
//! return type that accepts connections for ever. It binds 127.0.0.1:0 before ready (`readiness = "manual"`),
//! reports `PID PORT`, and answers each line with the same line.
use daemon_runtime::daemon;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[daemon(readiness = "manual")]
#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    tests::report(&format!("{} {port}\n", std::process::id()));
    daemon_runtime::ready().expect("ready");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if write
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}
