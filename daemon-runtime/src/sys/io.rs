//! Socket queries the runtime makes of descriptors systemd passed.

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
