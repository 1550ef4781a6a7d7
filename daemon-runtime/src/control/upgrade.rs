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
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use super::find::{may_hold, pidfd_pid, pin, pin_dir, pin_holder};
use super::outcome::Outcome;
use super::schedule::{Item, Schedule};
use super::{Action, Target};
use crate::handshake::{self, Handover, Report, UPGRADE_ENV};
use crate::pidfile::handover;
use crate::pidfile::holder::{self, LockFile, Verdict};
use crate::sys::fd::try_ofd_write_lock;
use crate::sys::io::int_option;
use crate::sys::process::{inherit_in_child, pidfd_getfd, pidfd_open, pidfd_send, pidfd_wait};
use crate::sys::signal::holding;

/// How much longer than the new daemon's own ready timeout `upgrade` waits for its report (its launcher
/// stops a daemon that missed the timeout, then reports).
const REPORT_GRACE: Duration = Duration::from_secs(5);
/// How long the new daemon has, once switched to, to tell systemd and answer.
const SWITCH_WAIT: Duration = Duration::from_secs(10);

pub(super) fn upgrade(
    target: &Target,
    args: Option<Vec<OsString>>,
    schedule: &Schedule,
    ready_timeout: Duration,
    commands: bool,
) -> Outcome {
    let (old, pidfd, lock) = match pin_holder(target, Action::Upgrade) {
        Err(outcome) => return outcome,
        Ok(Err(_)) => return Outcome::new(Action::Upgrade, 7, "cannot upgrade: not running"),
        Ok(Ok(pinned)) => pinned,
    };
    if let Err(why) = same_service(old) {
        return Outcome::new(
            Action::Upgrade,
            1,
            format!("cannot upgrade pid {old}: {why}"),
        )
        .with_pid(old);
    }
    // One upgrade at a time: an open-file-description lock on the lock file, which only root and the
    // lock file's owner may open; it goes with this process, however it ends. While it is held, `stop`
    // refuses and the old daemon leaves its files if it exits.
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
        None => match arguments_of(old, commands) {
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
    let upgrade = Upgrade {
        target,
        lock: &lock,
        old,
        old_pidfd: &pidfd,
    };
    let (new, new_pidfd) = match upgrade.ready(&report, &mut child, ready_timeout) {
        Ok(new) => new,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) = upgrade.switch(&report, &mut child, new, &new_pidfd) {
        return outcome;
    }
    // The new daemon's launcher exits once it is ready (in fork mode); in the foreground the new daemon
    // is this process's child and outlives it.
    let _ = child.try_wait();
    match drain(&pidfd, old, schedule) {
        Ok(()) => Outcome::new(
            Action::Upgrade,
            0,
            format!("upgraded (pid {old} -> pid {new})"),
        )
        .with_pid(new),
        Err(why) => Outcome::new(
            Action::Upgrade,
            1,
            format!("upgraded to pid {new}, but the old daemon {why}"),
        )
        .with_pid(new),
    }
}

/// The upgrade under way: the daemon it replaces, pinned, and the files.
struct Upgrade<'a> {
    target: &'a Target,
    lock: &'a LockFile,
    old: i32,
    old_pidfd: &'a OwnedFd,
}

impl Upgrade<'_> {
    /// Waits for the new daemon's report; its pid, verified (it holds the lock and runs as the daemon's
    /// user) and pinned, once it is ready; or, the new daemon ended, why not.
    fn ready(
        &self,
        report: &OwnedFd,
        child: &mut Child,
        ready_timeout: Duration,
    ) -> Result<(i32, OwnedFd), Outcome> {
        let mut said = None;
        // Only the first pid counts: the new daemon says it before it changes user, so nothing that
        // runs as the daemon's user can have written to the channel by then.
        let report =
            handshake::wait_telling_pid(report, ready_timeout + REPORT_GRACE, &mut |pid| {
                said.get_or_insert(pid);
            });
        let said = said.and_then(|pid| i32::try_from(pid).ok());
        let why = match report {
            Ok(Report::Ready) => match said {
                None => "the new daemon did not say its pid".to_string(),
                Some(new) => match self.pin_new(new) {
                    Ok(pidfd) => return Ok((new, pidfd)),
                    Err(why) => why,
                },
            },
            Ok(Report::Failed(error)) | Err(error) => error.to_string(),
            Ok(Report::Closed) => "the new daemon exited before it was ready".to_string(),
            Ok(Report::TimedOut) => {
                format!("the new daemon was not ready within {ready_timeout:?}, and was stopped")
            }
        };
        let new_pidfd = said.and_then(|new| self.pin_new(new).ok());
        Err(self.failed(new_pidfd.as_ref(), child, &why))
    }

    /// Switches to the new daemon: checks that the lock file is still the one handed over, writes the
    /// pid file, tells the new daemon, and waits for its answer (it has told systemd, `MAINPID=`).
    fn switch(
        &self,
        report: &OwnedFd,
        child: &mut Child,
        new: i32,
        new_pidfd: &OwnedFd,
    ) -> Result<(), Outcome> {
        if let Err(why) = self.lock_still_named() {
            return Err(self.failed(Some(new_pidfd), child, &why));
        }
        let new_pid = new.unsigned_abs();
        if let Err(error) = handover::write_atomically(&self.target.pid_file, new_pid) {
            return Err(self.failed(
                Some(new_pidfd),
                child,
                &format!("cannot write the pid file: {error}"),
            ));
        }
        let told = holding(Signal::SIGPIPE, || {
            nix::unistd::write(report, &[handshake::COMMIT]) == Ok(1)
        });
        let answer = if told {
            handshake::wait(report, SWITCH_WAIT)
        } else {
            Ok(Report::Closed)
        };
        let why = match answer {
            Ok(Report::Ready) => return Ok(()),
            Ok(Report::Failed(error)) | Err(error) => error.to_string(),
            Ok(Report::Closed) => "the new daemon exited when it was switched to".to_string(),
            Ok(Report::TimedOut) => {
                format!("the new daemon did not answer the switch within {SWITCH_WAIT:?}")
            }
        };
        // Back to the old daemon, which never stopped serving.
        if alive(self.old_pidfd) {
            let _ = handover::write_atomically(&self.target.pid_file, self.old.unsigned_abs());
        }
        Err(self.failed(Some(new_pidfd), child, &why))
    }

    /// The new daemon `pid`, pinned by a pidfd, if it is what an upgrade's new daemon is: it holds the
    /// lock handed over and runs as the daemon's user, as `stop` requires of what it signals. Its pid
    /// came over a channel its user may reach; it is acted on only once this holds.
    fn pin_new(&self, pid: i32) -> Result<OwnedFd, String> {
        let pidfd = pidfd_open(nix::unistd::Pid::from_raw(pid)).map_err(|errno| {
            format!(
                "cannot pin the new daemon, pid {pid}: {}",
                io::Error::from(errno)
            )
        })?;
        if pidfd_pid(&pidfd) != Some(pid) {
            return Err(format!("the new daemon, pid {pid}, is gone"));
        }
        let deadline = Instant::now() + holder::DEADLINE;
        if holder::verify(pid, self.lock, None, deadline) != Ok(Verdict::Holds) {
            return Err(format!(
                "refusing to act on pid {pid}, which the new daemon's channel named: it does not hold the lock of {}",
                self.lock.path.display()
            ));
        }
        match may_hold(self.lock, pid, self.target) {
            Ok(true) => Ok(pidfd),
            Ok(false) => Err(format!("the new daemon, pid {pid}, is gone")),
            Err(refusal) => Err(refusal.message()),
        }
    }

    /// Whether the lock file's path still names the file handed over: a daemon switched to with a lock
    /// on a file nobody can find would let a second daemon start beside it.
    fn lock_still_named(&self) -> Result<(), String> {
        let now = pin_dir(self.target)
            .ok()
            .and_then(|dir| pin(&dir, &self.lock.path, "lock file").ok().flatten());
        match now {
            Some(now) if (now.dev, now.ino) == (self.lock.dev, self.lock.ino) => Ok(()),
            _ => Err(format!(
                "the lock file {} was removed or replaced during the upgrade",
                self.lock.path.display()
            )),
        }
    }

    /// Ends the new daemon (where it was verified) and the process started for it, and says what is
    /// left: the old daemon serving, or, where it exited meanwhile, nothing (its files cleaned up).
    fn failed(&self, new: Option<&OwnedFd>, child: &mut Child, why: &str) -> Outcome {
        end(new, child);
        if alive(self.old_pidfd) {
            return Outcome::new(
                Action::Upgrade,
                1,
                format!("upgrade failed, pid {} keeps serving: {why}", self.old),
            )
            .with_pid(self.old);
        }
        // It left its files to the upgrade (see `PidFile`'s drop): nobody holds the lock now.
        crate::pidfile::clean_up(&self.target.pid_file);
        Outcome::new(
            Action::Upgrade,
            1,
            format!(
                "upgrade failed, and pid {} exited during it: not running: {why}",
                self.old
            ),
        )
    }
}

/// Whether the process `pidfd` pins still runs.
fn alive(pidfd: &OwnedFd) -> bool {
    pidfd_wait(pidfd, Duration::ZERO) == Ok(false)
}

/// Refuses to upgrade a daemon that runs in a systemd service from outside that service: the new daemon
/// would run outside the unit's cgroup and sandbox, and systemd would stop it with the unit (its
/// `ExecStop=`) once the old one, its main process, is gone. Under the unit's own `ExecReload=` both
/// are in the same cgroup.
fn same_service(old: i32) -> Result<(), String> {
    let unified = |text: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix("0::"))
            .map(str::to_string)
    };
    let Some(theirs) = std::fs::read_to_string(format!("/proc/{old}/cgroup"))
        .ok()
        .and_then(|text| unified(&text))
    else {
        return Ok(());
    };
    let ours = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| unified(&text))
        .unwrap_or_default();
    let mut prefix = String::new();
    for part in theirs.split('/').filter(|part| !part.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        if let Some(unit) = part.strip_suffix(".service") {
            let inside = ours == prefix || ours.starts_with(&format!("{prefix}/"));
            if !inside {
                return Err(format!(
                    "it runs in systemd's {part} and this process does not; upgrade it through its unit \
                     (`systemctl reload {unit}` with `ExecReload={} upgrade`), or the new daemon would run \
                     outside the unit",
                    std::env::current_exe()
                        .map_or_else(|_| "PROGRAM".to_string(), |exe| exe.display().to_string())
                ));
            }
            break;
        }
    }
    Ok(())
}

/// Starts this program's executable with `args` and what the old daemon hands over; returns the child
/// and the read end of the pipe the new daemon reports on.
fn spawn(old: i32, handed: Handed, args: &[OsString]) -> Result<(Child, OwnedFd), Outcome> {
    let fail = |why: String| {
        Outcome::new(Action::Upgrade, 1, format!("cannot upgrade: {why}")).with_pid(old)
    };
    let executable = std::env::current_exe()
        .map_err(|error| fail(format!("cannot find this executable: {error}")))?;
    // A socket pair, not a pipe: `upgrade` answers the new daemon's "ready" on it (see handshake.rs).
    let (report_read, report_write) = std::os::unix::net::UnixStream::pair()
        .map_err(|error| fail(format!("cannot create a socket pair: {error}")))?;
    let (report_read, report_write) = (OwnedFd::from(report_read), OwnedFd::from(report_write));
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
/// With `commands`, a leading `start` or `restart` is dropped: the new daemon only starts (a `restart`
/// would stop the daemon it is to replace).
fn arguments_of(pid: i32, commands: bool) -> Result<Vec<OsString>, String> {
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
    // Each argument ends in a NUL; an empty argument is an argument.
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    let mut args: Vec<OsString> = bytes
        .split(|b| *b == 0)
        .skip(1)
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect();
    let starts = |arg: &OsString| {
        matches!(
            arg.to_str().and_then(|word| word.parse::<Action>().ok()),
            Some(Action::Start | Action::Restart)
        )
    };
    if commands && args.first().is_some_and(starts) {
        args.remove(0);
    }
    Ok(args)
}

/// Ends a new daemon that failed (pinned once verified) and the process started for it.
fn end(new: Option<&OwnedFd>, child: &mut Child) {
    if let Some(pidfd) = new
        && !pidfd_wait(pidfd, Duration::from_secs(2)).unwrap_or(false)
    {
        let _ = pidfd_send(pidfd, Signal::SIGKILL);
        let _ = pidfd_wait(pidfd, Duration::from_secs(2));
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
