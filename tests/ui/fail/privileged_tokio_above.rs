use daemon_runtime::daemon;

fn bind() -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:0")
}

// `#[tokio::main]` above `#[daemon]` expands first and refuses a `main` with a parameter before
// `#[daemon]` can take it: put `#[daemon]` above the runtime's attribute.
#[tokio::main]
#[daemon(privileged = bind)]
async fn main(listener: std::net::TcpListener) {
    drop(listener);
}
