//! Opening a log file for appending, without following a symlink another user could have planted.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::Mode;

use crate::error::{Error, Step};
use crate::sys::fd::{above_stdio, dir_flags};

/// A log file as [`redirect_stdio`] opened it: the file, and the directory and name the checked walk of
/// its path ended at (a reopen works from those, never from the path again: review F4, F14).
#[derive(Debug)]
pub(crate) struct LogFile {
    /// The open file (also `dup2`ed onto fd 1 or 2).
    pub(crate) file: OwnedFd,
    /// The directory the walk ended in (`O_PATH` on Linux).
    pub(crate) dir: OwnedFd,
    /// The file's name in `dir` (the last component, after any symlink was followed).
    pub(crate) name: std::ffi::OsString,
    /// This open created the file (`O_CREAT|O_EXCL` succeeded), as opposed to opening one that existed.
    pub(crate) created: bool,
}

/// The log files of [`redirect_stdio`]; `stderr` is `None` when it shares stdout's file.
#[derive(Debug, Default)]
pub(crate) struct LogFiles {
    pub(crate) stdout: Option<LogFile>,
    pub(crate) stderr: Option<LogFile>,
}

/// How a log file is opened ([`open_log`]), as the builder keeps it: set by `stdout()` and `stderr()`, so
/// that a daemon without log files does not link that code.
pub(crate) type OpenLog = fn(&Path, Step) -> Result<LogFile, Error>;

/// [`open_log`], for the builder.
pub(crate) const OPEN_LOG: OpenLog = open_log;

/// Opens a log file for appending (created 0o640 under the caller's umask), close-on-exec, above 2.
///
/// In a sticky world-writable directory (`/tmp`), a symlink is followed only when it belongs to this
/// process's user or to the directory's owner: the kernel's `fs.protected_symlinks` rule, applied here
/// because many hosts turn it off. Otherwise another user could plant `/tmp/app.log -> /etc/shadow` (or
/// `/tmp/app -> /etc/cron.d`) and have a root daemon write there. The path is walked one component at a
/// time from a directory fd, each symlink read from its own inode and checked, so the rule holds for every
/// link on the way (the last component's, the directories', and each link of a chain); symlinks elsewhere
/// are followed as usual.
fn open_log(path: &Path, step: Step) -> Result<LogFile, Error> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    let fail = |errno| Error::at(step, path, errno);
    let euid = nix::unistd::Uid::effective().as_raw();
    let names = |path: &Path| -> VecDeque<OsString> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let start = |absolute: bool| {
        let at = if absolute { "/" } else { "." };
        open(at, dir_flags(), Mode::empty())
            .and_then(above_stdio)
            .map(|fd| (fd, PathBuf::from(at)))
    };
    let (mut dir, mut dir_path) = start(path.has_root()).map_err(fail)?;
    let mut rest = names(path);
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        let last = rest.is_empty();
        if name == ".." {
            if last {
                break; // a path ending in `..` names a directory: the open below fails with EISDIR
            }
            dir = nix::fcntl::openat(&dir, "..", dir_flags(), Mode::empty())
                .and_then(above_stdio)
                .map_err(fail)?;
            dir_path.push("..");
            continue;
        }
        let Some((link_owner, target)) = read_link(&dir, &name).map_err(fail)? else {
            if last {
                return open_log_file(dir, &dir_path, name, path, step);
            }
            dir = nix::fcntl::openat(
                &dir,
                name.as_os_str(),
                dir_flags() | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .and_then(above_stdio)
            .map_err(fail)?;
            dir_path.push(&name);
            continue;
        };
        let dir_stat = nix::sys::stat::fstat(&dir).map_err(fail)?;
        let sticky_world_writable =
            dir_stat.st_mode & libc::S_ISVTX != 0 && dir_stat.st_mode & libc::S_IWOTH != 0;
        if sticky_world_writable && link_owner != euid && link_owner != dir_stat.st_uid {
            let it = if links == 0 && last {
                "it is".to_string()
            } else {
                format!("it leads to {}, which is", dir_path.join(&name).display())
            };
            return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
                "{it} a symbolic link owned by uid {link_owner} in {}, a sticky world-writable directory owned \
                 by uid {}: following it would let that user choose the file written (the \
                 fs.protected_symlinks rule)",
                dir_path.display(),
                dir_stat.st_uid
            )));
        }
        // As root, a link that another user could have planted (theirs, in a directory not only root
        // may write to) is refused too, sticky or not: a daemon's user who owns its log directory
        // (`/var/log/app`) could otherwise point `app.log` at `/etc/passwd` for the next start as root.
        // A link root made there is the administrator's choice and is followed.
        let others_may_write = dir_stat.st_uid != 0 || dir_stat.st_mode & 0o022 != 0;
        if euid == 0 && link_owner != 0 && others_may_write {
            return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
                "{} is a symbolic link owned by uid {link_owner} in {}, which others than root may write \
                 to: following it as root would let that user choose the file written",
                dir_path.join(&name).display(),
                dir_path.display(),
            )));
        }
        // The kernel's own limit on the links of one lookup.
        links += 1;
        if links > 40 {
            return Err(fail(Errno::ELOOP));
        }
        // The target read from the very link checked (a symlink cannot be changed, only replaced),
        // resolved from the link's directory, or from the root.
        let target = Path::new(&target);
        if target.has_root() {
            (dir, dir_path) = start(true).map_err(fail)?;
        }
        for name in names(target).into_iter().rev() {
            rest.push_front(name);
        }
    }
    // Only `/`, `.` or a path ending in `..` get here: directories, not files.
    Err(fail(Errno::EISDIR))
}

/// The last step of [`open_log`]: `name` in `dir` is not a symlink (or is missing). Created with
/// `O_CREAT|O_EXCL`, else the existing file opened: so the start knows whether it made the file (only
/// then is it given to the daemon's user, or removed on a failed start: review F10, F15), never from a
/// `stat` made earlier. Opened without following a symlink (one planted since fails) and without blocking
/// (a FIFO nobody reads fails at once instead of hanging the start; a FIFO with a reader works, in blocking
/// mode as usual). An existing file is refused when:
/// - in a sticky world-writable directory, it belongs to another user than this process's or the
///   directory's (the kernel's `fs.protected_regular` and `fs.protected_fifos` rules): its owner could read
///   the log, or hold the start on a FIFO;
/// - it is a regular file with more than one link (review F5): where `fs.protected_hardlinks` is off, a
///   user who may write the directory can link any file there (`/etc/shadow`) and have the daemon append
///   to it. A log file has one name; the pid file is held to the same rule.
fn open_log_file(
    dir: OwnedFd,
    dir_path: &Path,
    name: std::ffi::OsString,
    path: &Path,
    step: Step,
) -> Result<LogFile, Error> {
    let fail = |errno| Error::at(step, path, errno);
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(0o640);
    let exclusive = flags | OFlag::O_CREAT | OFlag::O_EXCL;
    // A file removed between the two opens is created at the next try.
    let mut tries = 0;
    let (file, created) = loop {
        tries += 1;
        match nix::fcntl::openat(&dir, name.as_os_str(), exclusive, mode) {
            Ok(file) => break (file, true),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(fail(errno)),
        }
        match nix::fcntl::openat(&dir, name.as_os_str(), flags, mode) {
            Ok(file) => break (file, false),
            Err(Errno::ENOENT) if tries < 8 => {}
            Err(Errno::ENXIO) => {
                return Err(fail(Errno::ENXIO).with_detail("it is a FIFO that nobody reads"));
            }
            Err(errno) => return Err(fail(errno)),
        }
    };
    let log = LogFile {
        file: above_stdio(file).map_err(fail)?,
        dir,
        name,
        created,
    };
    if let Err(error) = check_log_file(&log, dir_path, path, step) {
        remove_created(&log);
        return Err(error);
    }
    let status = OFlag::from_bits_truncate(fcntl(&log.file, FcntlArg::F_GETFL).map_err(fail)?);
    fcntl(&log.file, FcntlArg::F_SETFL(status - OFlag::O_NONBLOCK)).map_err(fail)?;
    Ok(log)
}

/// The owner and link-count rules of [`open_log_file`], on the opened fd.
fn check_log_file(log: &LogFile, dir_path: &Path, path: &Path, step: Step) -> Result<(), Error> {
    let fail = |errno| Error::at(step, path, errno);
    if log.created {
        return Ok(());
    }
    let dir_stat = nix::sys::stat::fstat(&log.dir).map_err(fail)?;
    let sticky_world_writable =
        dir_stat.st_mode & libc::S_ISVTX != 0 && dir_stat.st_mode & libc::S_IWOTH != 0;
    let file_stat = nix::sys::stat::fstat(&log.file).map_err(fail)?;
    let euid = nix::unistd::Uid::effective().as_raw();
    if sticky_world_writable && file_stat.st_uid != euid && file_stat.st_uid != dir_stat.st_uid {
        return Err(Error::at(step, path, Errno::EACCES).with_detail(format!(
            "it belongs to uid {} in {}, a sticky world-writable directory owned by uid {}: that user \
             could read the log or hold the start (the fs.protected_regular rule)",
            file_stat.st_uid,
            dir_path.display(),
            dir_stat.st_uid
        )));
    }
    if file_stat.st_mode & libc::S_IFMT == libc::S_IFREG && file_stat.st_nlink > 1 {
        return Err(Error::at(step, path, Errno::EMLINK).with_detail(format!(
            "it has {} hard links: a log file has one name, and another could be a file the daemon must \
             not write to (the fs.protected_hardlinks rule)",
            file_stat.st_nlink
        )));
    }
    Ok(())
}

/// The owner and the target of `name` in `dir` if it is a symlink, both read from one inode: the link is
/// opened itself (`O_PATH|O_NOFOLLOW`), so a link swapped in between cannot pair one's owner with another's
/// target. `None` when `name` is missing or not a symlink.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_link(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
) -> Result<Option<(libc::uid_t, std::ffi::OsString)>, Errno> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let link = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Ok(link) => link,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let stat = nix::sys::stat::fstat(&link)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(None);
    }
    let target = nix::fcntl::readlinkat(&link, "")?;
    Ok(Some((stat.st_uid, target)))
}

/// Elsewhere there is no `O_PATH`: the owner and the target are read by name, then the owner is read
/// again; a link replaced in between (a new inode) is refused.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_link(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
) -> Result<Option<(libc::uid_t, std::ffi::OsString)>, Errno> {
    use nix::fcntl::AtFlags;
    let before = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    if before.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(None);
    }
    let target = nix::fcntl::readlinkat(dir, name)?;
    let after = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if before.st_ino != after.st_ino || after.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(Errno::ELOOP);
    }
    Ok(Some((before.st_uid, target)))
}

/// Removes a log file this start created, if its name still names it (a failed start leaves no file).
pub(crate) fn remove_created(log: &LogFile) {
    use nix::fcntl::AtFlags;
    if !log.created {
        return;
    }
    let Ok(ours) = nix::sys::stat::fstat(&log.file) else {
        return;
    };
    let named =
        nix::sys::stat::fstatat(&log.dir, log.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
    if named.is_ok_and(|it| it.st_dev == ours.st_dev && it.st_ino == ours.st_ino) {
        let _ = nix::unistd::unlinkat(
            &log.dir,
            log.name.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
}
