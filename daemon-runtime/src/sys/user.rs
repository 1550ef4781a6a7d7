//! Supplementary groups: `initgroups(3)` and `setgroups(2)` through nix, but on Apple platforms, where nix
//! leaves them out.

use std::ffi::CStr;

use nix::unistd::Gid;

#[cfg(not(target_vendor = "apple"))]
pub(crate) fn init_groups(name: &CStr, gid: Gid) -> nix::Result<()> {
    nix::unistd::initgroups(name, gid)
}

#[cfg(not(target_vendor = "apple"))]
pub(crate) fn clear_groups() -> nix::Result<()> {
    nix::unistd::setgroups(&[])
}

/// nix leaves initgroups(3) out on Apple platforms, whose group ids are `c_int` there.
#[cfg(target_vendor = "apple")]
pub(crate) fn init_groups(name: &CStr, gid: Gid) -> nix::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let result = unsafe { libc::initgroups(name.as_ptr(), gid.as_raw() as libc::c_int) };
    nix::errno::Errno::result(result).map(drop)
}

#[cfg(target_vendor = "apple")]
pub(crate) fn clear_groups() -> nix::Result<()> {
    // SAFETY: an empty list: the kernel reads nothing through the null pointer.
    let result = unsafe { libc::setgroups(0, std::ptr::null()) };
    nix::errno::Errno::result(result).map(drop)
}
