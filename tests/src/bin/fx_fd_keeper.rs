//! A service that keeps the descriptors it is sent, as systemd's fd store does (`FDSTORE=1`): `fx_fd_keeper
//! SOCKET` binds a Unix stream socket at SOCKET, reports `PID` to `$FIXTURE_OUT`, takes one connection,
//! keeps every descriptor that arrives with it (`SCM_RIGHTS`), and stays.
use std::io::IoSliceMut;
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: fx_fd_keeper SOCKET");
        std::process::exit(2);
    };
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    tests::report(&format!("{}\n", std::process::id()));
    let (stream, _) = listener.accept().expect("accept");
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let mut kept = Vec::new();
    if let Ok(message) = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    ) {
        for control in message.cmsgs().into_iter().flatten() {
            if let ControlMessageOwned::ScmRights(fds) = control {
                kept.extend(fds);
            }
        }
    }
    if let Some(out) = tests::out_path() {
        tests::report_at(&out.with_extension("kept"), &format!("{kept:?}\n"));
    }
    tests::linger();
}
