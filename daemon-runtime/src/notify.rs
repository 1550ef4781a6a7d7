//! systemd's readiness protocol: a datagram to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace), and the fds systemd passes with `$LISTEN_FDS`.

use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;

use crate::error::{Error, Step};

/// The variable systemd sets for `Type=notify` services.
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether systemd (or anything playing its part) waits for `READY=1`.
pub(crate) fn socket() -> Option<std::ffi::OsString> {
    std::env::var_os(NOTIFY_SOCKET).filter(|s| !s.is_empty())
}

/// Sends `state` (for example `READY=1`) to the notify socket, if there is one.
pub(crate) fn send(state: &str) -> Result<(), Error> {
    let Some(path) = socket() else { return Ok(()) };
    let shown = path.to_string_lossy().into_owned();
    let fail = |e: std::io::Error| Error::new(Step::Notify, Some(shown.clone()), e.raw_os_error());
    let socket = UnixDatagram::unbound().map_err(fail)?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(fail)?;
            socket.send_to_addr(state.as_bytes(), &address)
        }
        _ => socket.send_to(state.as_bytes(), &path),
    };
    sent.map(drop).map_err(fail)
}

/// The fds systemd passed to this process (`$LISTEN_FDS` fds from 3 on, when `$LISTEN_PID` is us).
pub(crate) fn listen_fds() -> Vec<RawFd> {
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    if pid != Some(std::process::id()) {
        return Vec::new();
    }
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok())
        .unwrap_or(0);
    (3..3 + count.clamp(0, 1 << 16)).collect()
}
