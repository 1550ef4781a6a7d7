//! Registering a descriptor with tokio's reactor (feature `tokio`).

use std::io;
use std::os::unix::net::UnixStream;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// `socket`, registered for readability with the current runtime's reactor.
pub(crate) fn readable(socket: UnixStream) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: the AsyncFd owns `socket`, so its descriptor stays open, names the same socket, and is what
    // `as_raw_fd` returns, for as long as the AsyncFd exists.
    Ok(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?)
}
