use daemon_runtime::daemon;

fn bind() -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:0")
}

// The parameter's type is checked against the privileged function's at compile time.
#[daemon(privileged = bind)]
#[tokio::main]
async fn main(listener: std::net::UdpSocket) {
    drop(listener);
}
