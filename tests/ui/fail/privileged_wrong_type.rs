use daemon_runtime::daemon;

fn bind() -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:80")
}

#[daemon(user = "nobody", privileged = bind)]
fn main(socket: std::net::UdpSocket) {
    drop(socket);
}
