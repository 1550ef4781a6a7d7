//! Pointing stdio at /dev/null (checked to be the null device) or at the log files, atomically.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::open::{LogFiles, OpenLog, remove_created};
use crate::error::{Error, Step};
use crate::sys::fd::above_stdio;

/// Points stdout and stderr at the given files (appended to, created 0o640 under the caller's umask),
/// each opened with `open_log` (given with any path); when `detached`, also stdin, and stdout or stderr
/// without a file, at /dev/null (in the foreground those stay as they are: the terminal, or systemd's
/// journal). The targets are opened first, then `dup2`ed onto 0, 1 and 2, which are never closed first,
/// so no other open can take their numbers in between. Returns the log files opened, for
/// `reopen::remember`.
pub(crate) fn redirect_stdio(
    stdout: Option<&Path>,
    stderr: Option<&Path>,
    open_log: Option<OpenLog>,
    detached: bool,
) -> Result<LogFiles, Error> {
    // The builder sets the opener with either path, so a path without one is never seen (and would fail
    // the start, not be ignored).
    let open_log = open_log.unwrap_or(OPEN_NOTHING);
    let null = if detached { Some(open_null()?) } else { None };
    let mut files = LogFiles::default();
    let removing = |files: LogFiles, error: Error| {
        // A file this start created goes when the start fails (review F15).
        for file in [files.stdout, files.stderr].into_iter().flatten() {
            remove_created(&file);
        }
        error
    };
    if let Some(path) = stdout {
        files.stdout = Some(open_log(path, Step::Stdout)?);
    }
    // stderr to the same path as stdout shares stdout's open file, so their lines interleave in order.
    let shared = stderr.is_some() && stderr == stdout;
    if let Some(path) = stderr.filter(|_| !shared) {
        match open_log(path, Step::Stderr) {
            Ok(file) => files.stderr = Some(file),
            Err(error) => return Err(removing(files, error)),
        }
    }
    let out = files.stdout.as_ref().map(|f| &f.file).or(null.as_ref());
    let err = match &files.stderr {
        Some(log) => Some(&log.file),
        None if shared => out,
        None => null.as_ref(),
    };
    // dup2 replaces 0, 1 and 2 atomically; no Rust object owns them (std's handles borrow them by number).
    let fail = |errno| Error::os(Step::Stdio, None, errno);
    let result = null
        .as_ref()
        .map_or(Ok(()), nix::unistd::dup2_stdin)
        .and_then(|()| out.map_or(Ok(()), nix::unistd::dup2_stdout))
        .and_then(|()| err.map_or(Ok(()), nix::unistd::dup2_stderr));
    match result {
        Ok(()) => Ok(files),
        Err(errno) => Err(removing(files, fail(errno))),
    }
}

/// The opener where none was set: refuses the path (see `redirect_stdio`).
const OPEN_NOTHING: OpenLog = |path, step| Err(Error::at(step, path, nix::errno::Errno::EINVAL));

const DEV_NULL: &str = "/dev/null";

/// Opens /dev/null and checks that it is the null device: a regular file mounted or left over it would
/// receive what the daemon writes, from offset 0 (glibc's daemon(3) refuses it too, with ENODEV).
fn open_null() -> Result<OwnedFd, Error> {
    let path = Path::new(DEV_NULL);
    let null = open(
        path,
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .and_then(above_stdio)
    .map_err(|errno| Error::at(Step::DevNull, path, errno))?;
    let stat =
        nix::sys::stat::fstat(&null).map_err(|errno| Error::at(Step::DevNull, path, errno))?;
    let checked = if stat.st_mode & libc::S_IFMT == libc::S_IFCHR {
        null_number(stat.st_rdev)
    } else {
        Err("it is not a character device (a file mounted or left over it?), so not the null device".into())
    };
    if let Err(why) = checked {
        return Err(Error::at(Step::DevNull, path, Errno::ENODEV).with_detail(why));
    }
    Ok(null)
}

/// Linux numbers the null device 1:3 everywhere.
#[cfg(target_os = "linux")]
fn null_number(rdev: libc::dev_t) -> Result<(), String> {
    match (libc::major(rdev), libc::minor(rdev)) {
        (1, 3) => Ok(()),
        (major, minor) => Err(format!(
            "it is the character device {major}:{minor}, not the null device 1:3"
        )),
    }
}

/// Elsewhere the number varies: being a character device is the check.
#[cfg(not(target_os = "linux"))]
fn null_number(_rdev: libc::dev_t) -> Result<(), String> {
    Ok(())
}
