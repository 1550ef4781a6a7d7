//! `upgrade`: a new daemon from the executable as it is on disk now takes over the running one's
//! listening sockets and lock, and the old one goes once the new one is ready; a new daemon that fails
//! before it is ready is ended, and the old one never learns of it.
//!
//! The old daemon need not cooperate for the hand-over: its lock descriptor and its listening sockets (the
//! descriptors its record names) are duplicated out of it with `pidfd_getfd(2)` (Linux 5.6; the kernel
//! allows it to root, or to the daemon's own user where it may ptrace it), checked (the lock file's inode,
//! listening sockets), and inherited by the new process, which finds them in `DAEMON_UPGRADE`. The same
//! open files: the lock is held all along, and connections the kernel completed but the old daemon did
//! not accept are accepted by the new one. Once the new daemon reports ready on the pipe `upgrade` gave
//! it, `upgrade` writes the pid file (atomically, with the new pid) and sends the old daemon SIGTERM, which
//! its signal API reads as `Terminate(Term::Upgraded)`; the stop schedule bounds its drain.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use super::find::pin_holder;
use super::outcome::Outcome;
use super::schedule::{Item, Schedule};
use super::{Action, Target};
use crate::handshake::{self, Handover, Report, UPGRADE_ENV};
use crate::pidfile::handover;
use crate::pidfile::holder::{self, LockFile};
use crate::sys::fd::try_ofd_write_lock;
use crate::sys::io::int_option;
use crate::sys::process::{inherit_in_child, pidfd_getfd, pidfd_open, pidfd_send, pidfd_wait};

/// How much longer than the new daemon's own ready timeout `upgrade` waits for its report (its launcher
/// stops a daemon that missed the timeout, then reports).
const REPORT_GRACE: Duration = Duration::from_secs(5);

pub(super) fn upgrade(
    target: &Target,
    args: Option<Vec<OsString>>,
    schedule: &Schedule,
    ready_timeout: Duration,
) -> Outcome {
    let (old, pidfd, lock) = match pin_holder(target, Action::Upgrade) {
        Err(outcome) => return outcome,
        Ok(Err(_)) => return Outcome::new(Action::Upgrade, 7, "cannot upgrade: not running"),
        Ok(Ok(pinned)) => pinned,
    };
    // One upgrade at a time: an open-file-description lock on the lock file, which only root and the
    // lock file's owner may open; it goes with this process, however it ends.
    let _exclusive = match exclusive(&lock) {
        Ok(Some(file)) => file,
        Ok(None) => {
            return Outcome::new(
                Action::Upgrade,
                1,
                format!("cannot upgrade pid {old}: another upgrade is in progress"),
            )
            .with_pid(old);
        }
        Err(outcome) => return outcome,
    };
    let handed = match hand_over(&pidfd, old, &lock) {
        Ok(handed) => handed,
        Err(outcome) => return outcome,
    };
    let args = match args {
        Some(args) => args,
        None => match arguments_of(old) {
            Ok(args) => args,
            Err(why) => {
                return Outcome::new(
                    Action::Upgrade,
                    2,
                    format!("cannot upgrade pid {old}: {why}"),
                )
                .with_pid(old);
            }
        },
    };
    let (mut child, report) = match spawn(old, handed, &args) {
        Ok(spawned) => spawned,
        Err(outcome) => return outcome,
    };
    let new = match ready(&report, &mut child, old, ready_timeout) {
        Ok(new) => new,
        Err(outcome) => return outcome,
    };
    // From here the pid file names the new daemon, which serves; the old one is superseded.
    if let Err(error) = handover::write_atomically(&target.pid_file, new) {
        end(Some(new), &mut child);
        return Outcome::new(
            Action::Upgrade,
            1,
            format!("upgrade failed, pid {old} keeps serving: cannot write the pid file: {error}"),
        )
        .with_pid(old);
    }
    // The new daemon's launcher exits once it is ready (in fork mode); in the foreground the new daemon
    // is this process's child and outlives it.
    let _ = child.try_wait();
    let new_pid = i32::try_from(new).unwrap_or(i32::MAX);
    match drain(&pidfd, old, schedule) {
        Ok(()) => Outcome::new(
            Action::Upgrade,
            0,
            format!("upgraded (pid {old} -> pid {new})"),
        )
        .with_pid(new_pid),
        Err(why) => Outcome::new(
            Action::Upgrade,
            1,
            format!("upgraded to pid {new}, but the old daemon {why}"),
        )
        .with_pid(new_pid),
    }
}

/// Starts this program's executable with `args` and what the old daemon hands over; returns the child
/// and the read end of the pipe the new daemon reports on.
fn spawn(old: i32, handed: Handed, args: &[OsString]) -> Result<(Child, OwnedFd), Outcome> {
    let fail = |why: String| {
        Outcome::new(Action::Upgrade, 1, format!("cannot upgrade: {why}")).with_pid(old)
    };
    let executable = std::env::current_exe()
        .map_err(|error| fail(format!("cannot find this executable: {error}")))?;
    let (report_read, report_write) = crate::sys::fd::pipe()
        .map_err(|errno| fail(format!("cannot create a pipe: {}", io::Error::from(errno))))?;
    let description = Handover {
        predecessor: u32::try_from(old).unwrap_or(0),
        lock: handed.lock.as_raw_fd(),
        report: report_write.as_raw_fd(),
        listens: handed
            .sockets
            .iter()
            .map(|(name, fd)| (name.clone(), fd.as_raw_fd()))
            .collect(),
    };
    let mut command = Command::new(&executable);
    command
        .args(args)
        .env(UPGRADE_ENV, description.encode())
        .stdin(Stdio::null());
    let mut inherited: Vec<RawFd> = vec![handed.lock.as_raw_fd(), report_write.as_raw_fd()];
    inherited.extend(handed.sockets.iter().map(|(_, fd)| fd.as_raw_fd()));
    inherit_in_child(&mut command, inherited);
    let child = command
        .spawn()
        .map_err(|error| fail(format!("cannot start {}: {error}", executable.display())))?;
    // The new daemon holds its copies now: ours close, so that its end of the pipe is the only one.
    drop(handed);
    drop(report_write);
    Ok((child, report_read))
}

/// Waits for the new daemon's report; its pid once it is ready, or (the new daemon ended) why not.
fn ready(
    report: &OwnedFd,
    child: &mut Child,
    old: i32,
    ready_timeout: Duration,
) -> Result<u32, Outcome> {
    let mut new = None;
    let report = handshake::wait_telling_pid(report, ready_timeout + REPORT_GRACE, &mut |pid| {
        new = Some(pid);
    });
    let mut failed = |why: String| {
        end(new, child);
        Outcome::new(
            Action::Upgrade,
            1,
            format!("upgrade failed, pid {old} keeps serving: {why}"),
        )
        .with_pid(old)
    };
    match report {
        Ok(Report::Ready) => {
            new.ok_or_else(|| failed("the new daemon did not say its pid".to_string()))
        }
        Ok(Report::Failed(error)) | Err(error) => Err(failed(error.to_string())),
        Ok(Report::Closed) => Err(failed(
            "the new daemon exited before it was ready".to_string(),
        )),
        Ok(Report::TimedOut) => Err(failed(format!(
            "the new daemon was not ready within {ready_timeout:?}, and was stopped"
        ))),
    }
}

/// The lock file opened for writing, with an open-file-description lock on it; `None` when another
/// upgrade holds it.
fn exclusive(lock: &LockFile) -> Result<Option<std::fs::File>, Outcome> {
    let denied = |error: io::Error| {
        let code = if error.kind() == io::ErrorKind::PermissionDenied {
            4
        } else {
            1
        };
        Outcome::new(
            Action::Upgrade,
            code,
            format!(
                "cannot upgrade: cannot open {}: {error} (an upgrade needs root or the lock file's owner, who started the daemon)",
                lock.path.display()
            ),
        )
    };
    // Reopened through the pinned descriptor's magic link (which O_NOFOLLOW would refuse), so the file is
    // the very inode that was checked, whatever its path names now.
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let path = format!("/proc/self/fd/{}", lock.fd.as_raw_fd());
    let file = nix::fcntl::open(path.as_str(), flags, Mode::empty())
        .map(std::fs::File::from)
        .map_err(|errno| denied(io::Error::from(errno)))?;
    match try_ofd_write_lock(&file) {
        Ok(true) => Ok(Some(file)),
        Ok(false) => Ok(None),
        Err(errno) => Err(denied(io::Error::from(errno))),
    }
}

/// What the old daemon hands over: its lock's open file and its listening sockets, each checked.
struct Handed {
    lock: OwnedFd,
    sockets: Vec<(String, OwnedFd)>,
}

fn hand_over(pidfd: &OwnedFd, old: i32, lock: &LockFile) -> Result<Handed, Outcome> {
    let refuse = |code: u8, why: String| {
        Err(Outcome::new(
            Action::Upgrade,
            code,
            format!("cannot upgrade pid {old}: {why}"),
        )
        .with_pid(old))
    };
    let Some(record) = holder::parsed_record(lock) else {
        return refuse(1, "its record in the lock file cannot be read".to_string());
    };
    let Some((named, Some(lock_fd))) = holder::record_of(lock) else {
        return refuse(1, "its record names no lock descriptor".to_string());
    };
    if named != old {
        return refuse(1, format!("its record names pid {named}"));
    }
    let take = |fd: i32| {
        pidfd_getfd(pidfd, fd).map_err(|errno| {
            let code = if errno == Errno::EPERM { 4 } else { 1 };
            Outcome::new(
                Action::Upgrade,
                code,
                format!(
                    "cannot upgrade pid {old}: cannot take its descriptor {fd} (pidfd_getfd): {}{}",
                    io::Error::from(errno),
                    if errno == Errno::EPERM {
                        " (it needs root or the daemon's own user, and a system call filter that allows \
                         pidfd_getfd: systemd-nspawn's, or a unit's SystemCallFilter=, may refuse it)"
                    } else {
                        ""
                    }
                ),
            )
            .with_pid(old)
        })
    };
    let handed_lock = take(lock_fd)?;
    let same = nix::sys::stat::fstat(&handed_lock)
        .is_ok_and(|stat| stat.st_dev == lock.dev && stat.st_ino == lock.ino);
    if !same {
        return refuse(
            1,
            format!("its descriptor {lock_fd} is not {}", lock.path.display()),
        );
    }
    let mut sockets = Vec::new();
    for (name, fd) in record.listens {
        // The record is the daemon's (possibly compromised) word: a name is what `listen::share` takes.
        let valid = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return refuse(
                1,
                format!("its record names a socket {name:?}, which is no socket name"),
            );
        }
        let socket = take(fd)?;
        if int_option(socket.as_raw_fd(), libc::SO_ACCEPTCONN).ok() != Some(1) {
            return refuse(
                1,
                format!("its descriptor {fd}, shared as {name:?}, is not a listening socket"),
            );
        }
        sockets.push((name, socket));
    }
    Ok(Handed {
        lock: handed_lock,
        sockets,
    })
}

/// The running daemon's own arguments (without `argv[0]`), from /proc: only where it runs as this
/// process's user. A process may rewrite what /proc shows of its arguments (they are its own memory): a
/// daemon that dropped its privileges must not choose the arguments root starts the new daemon with.
fn arguments_of(pid: i32) -> Result<Vec<OsString>, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| format!("cannot read its status: {error}"))?;
    let me = nix::unistd::Uid::effective().as_raw();
    let uids: Vec<u32> = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .map(|uids| {
            uids.split_whitespace()
                .filter_map(|u| u.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if uids.len() < 3 || uids.iter().take(3).any(|uid| *uid != me) {
        return Err(format!(
            "it runs as another user (uids {uids:?}), which could have rewritten the arguments /proc shows; \
             give the new daemon's arguments: `upgrade ARGS...` (`upgrade --` for none)"
        ));
    }
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|error| format!("cannot read its arguments: {error}"))?;
    Ok(bytes
        .split(|b| *b == 0)
        .skip(1)
        .filter(|arg| !arg.is_empty())
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect())
}

/// Ends a new daemon that failed (it said its pid) and the process started for it.
fn end(new: Option<u32>, child: &mut Child) {
    if let Some(pid) = new.and_then(|pid| i32::try_from(pid).ok())
        && let Ok(pidfd) = pidfd_open(nix::unistd::Pid::from_raw(pid))
        && !pidfd_wait(&pidfd, Duration::from_secs(2)).unwrap_or(false)
    {
        let _ = pidfd_send(&pidfd, Signal::SIGKILL);
        let _ = pidfd_wait(&pidfd, Duration::from_secs(2));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Sends the old daemon the stop schedule's signals (SIGTERM first, in the default schedule, which its
/// signal API reads as the upgrade's) and waits for it to exit; its lock stays with the new daemon.
fn drain(pidfd: &OwnedFd, old: i32, schedule: &Schedule) -> Result<(), String> {
    let mut index = 0;
    loop {
        if index == schedule.items.len() {
            match schedule.repeat_from {
                Some(from) => index = from,
                None => break,
            }
        }
        match schedule.items[index] {
            Item::Signal(signal) => match pidfd_send(pidfd, signal) {
                Ok(()) => {}
                Err(Errno::ESRCH) => return Ok(()),
                Err(errno) => {
                    return Err(format!(
                        "pid {old} could not be signalled: {}",
                        io::Error::from(errno)
                    ));
                }
            },
            Item::Wait(timeout) => {
                if pidfd_wait(pidfd, timeout).unwrap_or(false) {
                    return Ok(());
                }
            }
        }
        index += 1;
    }
    if pidfd_wait(pidfd, Duration::ZERO).unwrap_or(false) {
        return Ok(());
    }
    Err(format!(
        "pid {old} is still running at the end of the stop schedule"
    ))
}
