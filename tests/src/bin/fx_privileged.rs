//! `#[daemon]` with the privilege keys: binds 127.0.0.3:80 as root (`privileged`), keeps
//! `net_bind_service`, runs as nobody, hardened. Reports `PID bound=RESULT` (a bind of 127.0.0.3:81 in
//! the body, as nobody), then answers each connection to the privileged listener with `uid=N`.
use std::io::Write;
use std::net::TcpListener;

use daemon_runtime::daemon;

fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.3:80")
}

#[daemon(
    user = "nobody",
    privileged = bind,
    keep_caps = ["net_bind_service"],
    core_dumps = false,
    no_new_privs = true,
    nofile = [1000, 2000],
    nice = 3,
    env = ["FIXTURE_*"]
)]
fn main(listener: TcpListener) -> std::io::Result<()> {
    let bound = match TcpListener::bind("127.0.0.3:81") {
        Ok(_) => "ok".to_string(),
        Err(error) => error.to_string(),
    };
    tests::report(&format!("{} bound={bound}\n", std::process::id()));
    for stream in listener.incoming() {
        let uid = nix::unistd::Uid::effective();
        (&stream?).write_all(format!("uid={uid}\n").as_bytes())?;
    }
    Ok(())
}
