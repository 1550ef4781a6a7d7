//! Sockets: the queries the runtime makes of descriptors systemd passed, and descriptors sent with a
//! message (`SCM_RIGHTS`, systemd's file descriptor store).

use std::io;
use std::os::fd::RawFd;

/// The address family of socket `fd` (from getsockname, which every Unix has; `SO_DOMAIN` is Linux's).
pub(crate) fn socket_domain(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut length = socklen::<libc::sockaddr_storage>();
    // SAFETY: getsockname writes at most `length` bytes (the size of `address`) into `address`.
    let result =
        unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(address).cast(), &raw mut length) };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::c_int::from(address.ss_family))
}

/// The size of `T` as a socket length (the types passed are a few bytes long).
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// An integer `SOL_SOCKET` option of `fd`.
pub(crate) fn int_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut length = socklen::<libc::c_int>();
    // SAFETY: getsockopt writes at most `length` bytes (the size of `value`) into `value` and the real
    // length into `length`; both live for the call.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::addr_of_mut!(value).cast(),
            &raw mut length,
        )
    };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sends `bytes` as one message on the connected socket `socket`, with `fds` attached (`SCM_RIGHTS`).
pub(crate) fn send_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let data_len = u32::try_from(std::mem::size_of_val(raw.as_slice()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
    // u64 elements: the control buffer must be aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: an all-zero msghdr is a valid value (no name, no buffers) to fill in below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes, enough for one header with `data_len` bytes of data,
    // so the first header exists.
    let header = unsafe { libc::CMSG_FIRSTHDR(&raw const message) };
    if header.is_null() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: CMSG_LEN only computes a size from its argument.
    let header_len = unsafe { libc::CMSG_LEN(data_len) };
    // SAFETY: `header` points into `control`, aligned and large enough for a cmsghdr (checked non-null).
    unsafe {
        header.write(libc::cmsghdr {
            cmsg_len: header_len as _,
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        });
    }
    // SAFETY: CMSG_DATA of a header inside `control` points at its data, within the buffer.
    let data = unsafe { libc::CMSG_DATA(header) };
    // SAFETY: the data area holds `data_len` bytes (CMSG_SPACE above), which is what `raw` occupies; the
    // regions do not overlap (a local Vec and the control buffer).
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            data,
            std::mem::size_of_val(raw.as_slice()),
        );
    }
    // SAFETY: sendmsg reads the message, its one iovec (`bytes`, alive) and its control buffer (alive).
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &raw const message, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `recv(MSG_DONTWAIT)` on a socket: reads what is queued without ever blocking, whatever the socket's
/// own `O_NONBLOCK` flag (a program's event loop may change it on a descriptor it was handed).
pub(crate) fn recv_now(
    socket: std::os::fd::BorrowedFd<'_>,
    buffer: &mut [u8],
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: recv(2) writes at most `buffer.len()` bytes into the live buffer, on a descriptor the caller
    // keeps open for the call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
