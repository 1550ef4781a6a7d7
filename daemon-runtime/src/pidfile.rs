//! The pid file: created without following symlinks, locked for the daemon's life, removed on a normal exit.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Step};
use crate::fds;

/// The mode of the pid file whatever the umask: start-stop-daemon refuses group- or world-writable ones.
const MODE: libc::mode_t = 0o644;

/// How long a launch that lost the race waits for the winner to write its pid into the file.
const READ_PID_FOR: Duration = Duration::from_secs(2);

/// A locked pid file. Dropping it removes the file (or, where it cannot, empties it) and releases the lock.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    /// Kept open for the daemon's life: the lock lives as long as this descriptor.
    file: File,
}

impl PidFile {
    /// Opens and locks `path` (absolute), then writes `pid` into it.
    pub(crate) fn acquire(path: &Path, pid: u32) -> Result<PidFile, Error> {
        let fail = |errno: Errno| {
            let error = Error::at(Step::PidFile, path, errno);
            if errno == Errno::ELOOP {
                error.with_detail("it is a symbolic link, which a pid file must not be")
            } else {
                error
            }
        };
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut file = loop {
            let fd = open(path, flags, Mode::from_bits_truncate(MODE))
                .and_then(fds::above_stdio)
                .map_err(fail)?;
            let mut file = File::from(fd);
            match lock(&file) {
                Err(Errno::EWOULDBLOCK) => return Err(already_running(path, &mut file)),
                Err(errno) => return Err(fail(errno)),
                Ok(()) => {}
            }
            // The previous holder may have removed the path between our open and our lock: then we hold a
            // lock on a file nobody else can find, and must start again on the file the path names now.
            if names(path, &file) {
                break file;
            }
        };
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(MODE)).map_err(fail)?;
        file.set_len(0).map_err(|e| fail(io_errno(&e)))?;
        file.write_all(format!("{pid}\n").as_bytes())
            .map_err(|e| fail(io_errno(&e)))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, and only if the path still names our file: after a chroot it names
        // something else (or nothing). Where it cannot be removed (after a chroot, or without write access
        // to the directory once privileges are dropped), it is emptied through the descriptor opened
        // before, so that no stale pid is left to match a recycled process. The lock goes when `file` closes.
        if names(&self.path, &self.file) && std::fs::remove_file(&self.path).is_ok() {
            return;
        }
        let _ = self.file.set_len(0);
    }
}

/// Whether `path` (not followed if it is a symlink) is the file open as `file`.
fn names(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

fn lock(file: &File) -> Result<(), Errno> {
    // SAFETY: flock(2) on a descriptor that `file` owns and keeps open; no memory is involved.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Errno::result(result).map(drop)
}

/// The error for a pid file another live process holds, naming that process's pid.
fn already_running(path: &Path, file: &mut File) -> Error {
    let deadline = Instant::now() + READ_PID_FOR;
    // The winner may have locked the file and not yet written its pid (the file may even still hold the
    // pid of the dead daemon it takes over): read until it names a live process.
    let pid = loop {
        let mut text = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
        let pid = read
            .ok()
            .and_then(|_| text.strip_suffix('\n')?.parse::<u32>().ok());
        if pid.is_some_and(is_alive) {
            break pid;
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let error = Error::new(
        Step::AlreadyRunning,
        pid.map(|pid| format!("(pid {pid})")),
        None,
    );
    error.with_detail(format!(
        "pid file {} is locked by the running daemon",
        path.display()
    ))
}

/// Whether a process with this pid exists (a process of another user counts: EPERM).
fn is_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(Errno::ESRCH)
        )
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed afterwards.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir()
                .join(format!("daemon-rt-pidfile-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn written_locked_and_removed() {
        let dir = Dir::new("basic");
        let path = dir.0.join("app.pid");
        std::fs::write(&path, "stale\n").unwrap();
        let pid = std::process::id();
        let pid_file = PidFile::acquire(&path, pid).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
        // flock locks belong to the open file: a second open, even in this process, finds it locked.
        let error = PidFile::acquire(&path, 1).unwrap_err();
        assert_eq!(error.step(), Step::AlreadyRunning);
        assert_eq!(error.subject(), Some(format!("(pid {pid})").as_str()));
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            content,
            format!("{pid}\n"),
            "the holder's file is untouched"
        );
        drop(pid_file);
        assert!(!path.exists());
    }

    #[test]
    fn a_path_that_names_another_file_is_left_alone_and_ours_is_emptied() {
        let dir = Dir::new("replaced");
        let path = dir.0.join("app.pid");
        let pid_file = PidFile::acquire(&path, 4242).unwrap();
        // Someone (or a chroot's view of the same path) puts another file there.
        let other = dir.0.join("other");
        std::fs::write(&other, "7\n").unwrap();
        let moved = dir.0.join("ours");
        std::fs::rename(&path, &moved).unwrap();
        std::fs::rename(&other, &path).unwrap();
        drop(pid_file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "7\n",
            "another file was removed or changed"
        );
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            "",
            "our file was not emptied"
        );
    }

    #[test]
    fn a_symlink_is_refused() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("target");
        std::fs::write(&target, "keep\n").unwrap();
        let path = dir.0.join("app.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = PidFile::acquire(&path, 1).unwrap_err();
        assert_eq!(
            error.os_error().and_then(|e| e.raw_os_error()),
            Some(libc::ELOOP)
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    }
}
