//! The pid file's directory, pinned by a descriptor, and the names in it: what a file there is, and
//! removing it only while its name still names that file.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::open;
use nix::sys::stat::Mode;
use nix::unistd::Uid;

use crate::error::{Error, Step};
use crate::sys::fd::dir_flags;

/// The pid file's directory, pinned by a descriptor: both files are opened, checked and removed relative
/// to it, so that a directory swapped under the path cannot redirect them. It is checked first: whoever
/// may write it may rename the lock file aside and put one of their own in its place, which a start, and
/// root's control actions, would then take for the daemon's (review of issue 18, finding 3).
pub(crate) struct Dir {
    pub(crate) fd: OwnedFd,
}

impl Dir {
    /// Opens and checks the directory of `file` (an absolute path).
    pub(crate) fn of(file: &Path) -> Result<Dir, (PathBuf, DirRefusal)> {
        let path = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let fd = match open(&path, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(errno) => return Err((path, DirRefusal::Os(errno))),
        };
        let stat = match nix::sys::stat::fstat(&fd) {
            Ok(stat) => stat,
            Err(errno) => return Err((path, DirRefusal::Os(errno))),
        };
        if let Some(why) = dir_refusal(stat.st_uid, mode_bits(stat.st_mode)) {
            return Err((path, DirRefusal::Writable(why)));
        }
        Ok(Dir { fd })
    }
}

/// Why a pid file's directory is refused.
pub(crate) enum DirRefusal {
    Os(Errno),
    Writable(String),
}

/// Whether a directory of owner `uid` and mode `mode` lets anyone but root and this process's user
/// replace the files in it: owned by another user, or writable by a group or others without the sticky
/// bit (in a sticky directory such as `/tmp`, only a file's owner may rename or remove it).
fn dir_refusal(uid: u32, mode: u32) -> Option<String> {
    let euid = Uid::effective().as_raw();
    if uid != 0 && uid != euid {
        return Some(format!(
            "it belongs to uid {uid}, who could put another lock file in place of the daemon's: keep pid \
             files in a directory only root can write, such as /run"
        ));
    }
    if mode & 0o022 != 0 && mode & mode_bits(libc::S_ISVTX) == 0 {
        return Some(format!(
            "it is group- or world-writable (mode {:o}) without the sticky bit, so others could put \
             another lock file in place of the daemon's: keep pid files in a directory only root can \
             write, such as /run",
            mode & 0o7777
        ));
    }
    None
}

/// A `mode_t` as `u32` (it is `u16` on macOS and FreeBSD).
#[allow(clippy::useless_conversion)]
fn mode_bits(mode: libc::mode_t) -> u32 {
    u32::from(mode)
}

/// The device and inode of a `stat` as `u64`s (`st_dev` is signed on macOS).
#[allow(
    clippy::useless_conversion,
    clippy::cast_sign_loss,
    clippy::unnecessary_cast
)]
fn stat_id(stat: &nix::sys::stat::FileStat) -> (u64, u64) {
    (stat.st_dev as u64, u64::from(stat.st_ino))
}

/// The last component of an absolute file path (the callers' paths always have one).
pub(super) fn name_of(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

/// The error for a refused directory of the pid file at `path`.
pub(super) fn dir_error(path: &Path, dir: &Path, why: DirRefusal) -> Error {
    match why {
        DirRefusal::Os(errno) => Error::at(Step::PidFile, path, errno),
        DirRefusal::Writable(why) => {
            Error::new(Step::PidFile, Some(path.display().to_string()), None).with_detail(format!(
                "its directory {} is not safe: {why}",
                dir.display()
            ))
        }
    }
}

/// Whether `name` in `dir` (not followed if it is a symlink) is the file of device and inode `id`.
pub(super) fn names_in(dir: &Dir, name: &std::ffi::OsStr, id: (u64, u64)) -> bool {
    nix::sys::stat::fstatat(&dir.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|named| stat_id(&named) == id && id != (0, 0))
}

/// Removes `name` in `dir` if it still names the file of device and inode `id`; whether it did.
pub(super) fn remove_if_names_in(dir: &Dir, name: &std::ffi::OsStr, id: (u64, u64)) -> bool {
    names_in(dir, name, id)
        && nix::unistd::unlinkat(&dir.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir).is_ok()
}

/// The device and inode of an open file.
pub(super) fn id_of(file: &File) -> (u64, u64) {
    file.metadata()
        .map_or((0, 0), |metadata| (metadata.dev(), metadata.ino()))
}

/// Removes `path` if it still names the file of device and inode `id`; whether it did.
pub(super) fn remove_if_names(path: &Path, id: (u64, u64)) -> bool {
    let named = std::fs::symlink_metadata(path).is_ok_and(|it| (it.dev(), it.ino()) == id);
    named && id != (0, 0) && std::fs::remove_file(path).is_ok()
}
