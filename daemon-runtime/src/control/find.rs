//! Finding the daemon an action acts on: the lock file pinned, its holder found from the candidates the
//! daemon's own files name and verified through the kernel (pidfile/holder.rs), then pinned by a pidfd.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat};

use super::outcome::Outcome;
use super::{Action, Target};
use crate::pidfile::holder::{self, LockFile, Probe, Verdict};
use crate::pidfile::{Dir, DirRefusal, lock_path, locks};
use crate::sys::process::pidfd_open;

/// Why an action cannot go on: the message, and whether it is a matter of permission (LSB code 4).
#[derive(Debug)]
pub(super) struct Refusal {
    message: String,
    permission: bool,
}

impl Refusal {
    pub(super) fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            permission: false,
        }
    }

    pub(super) fn io(what: &str, path: &Path, error: &io::Error) -> Refusal {
        Refusal {
            message: format!("cannot {what} {}: {error}", path.display()),
            permission: matches!(error.raw_os_error(), Some(libc::EACCES | libc::EPERM)),
        }
    }

    pub(super) fn timed_out(lock: &LockFile) -> Refusal {
        Refusal::new(format!(
            "the holder of {} could not be verified within {:?}",
            lock.path.display(),
            holder::DEADLINE
        ))
    }

    /// Why, in words.
    pub(super) fn message(self) -> String {
        self.message
    }

    /// The outcome of `action` refused for this reason (status: 4 "cannot tell").
    pub(super) fn outcome(self, action: Action) -> Outcome {
        let code = if action == Action::Status || self.permission {
            4
        } else {
            1
        };
        Outcome::new(action, code, self.message)
    }
}

/// What the files and the kernel say.
pub(super) enum Found {
    /// `pid` holds the lock (verified as far as this user can see).
    Running { pid: i32, lock: LockFile },
    /// Nobody holds the lock.
    Stopped(Stopped),
}

/// The files a daemon that is not running left.
pub(super) struct Stopped {
    /// The pid file exists: `Some(empty)`; `None` when it does not.
    pub(super) pid_file: Option<bool>,
    /// The lock file, if there is one.
    pub(super) lock: Option<LockFile>,
    /// Why the pid file would be refused, where it would (only looked at, to tell "stopped" from
    /// "dead, files left").
    pub(super) refused: Option<String>,
    /// The lock, taken by this process where it may open the lock file: proof that nobody holds it,
    /// kept for a clean-up.
    pub(super) taken: Option<std::fs::File>,
}

/// The pid file's directory, pinned and checked as the start checks it: one that others than root and
/// the caller may write (but for the sticky `/tmp`) could hold another lock file in place of the
/// daemon's, so that the actions would act on a decoy.
pub(super) fn pin_dir(target: &Target) -> Result<Dir, Refusal> {
    Dir::of(&target.pid_file).map_err(|(dir, why)| match why {
        DirRefusal::Os(errno) => Refusal::io("look at", &dir, &io::Error::from(errno)),
        DirRefusal::Writable(why) => Refusal::new(format!(
            "refusing to use pid file {}: its directory {} is not safe: {why}",
            target.pid_file.display(),
            dir.display()
        )),
    })
}

/// Opens `path` in `dir` with `O_PATH|O_NOFOLLOW` (no read permission needed) and checks it: a regular
/// file, not group- or world-writable, owned by root or the caller (a file of the daemon's user in
/// the daemon's place would be a decoy: the start makes them root's). `None` when it does not exist.
pub(super) fn pin(dir: &Dir, path: &Path, what: &str) -> Result<Option<LockFile>, Refusal> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let name = path.file_name().unwrap_or(path.as_os_str());
    let fd = match nix::fcntl::openat(&dir.fd, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(Refusal::io("look at", path, &io::Error::from(errno))),
    };
    let stat = fstat(&fd).map_err(|e| Refusal::io("look at", path, &io::Error::from(e)))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let refuse = |why: &str| {
        Err(Refusal::new(format!(
            "refusing to use {what} {}: {why}",
            path.display()
        )))
    };
    if kind == SFlag::S_IFLNK {
        return refuse("it is a symbolic link");
    }
    if kind != SFlag::S_IFREG {
        return refuse("it is not a regular file");
    }
    if stat.st_mode & 0o022 != 0 {
        return refuse(&format!(
            "it is group- or world-writable (mode {:o})",
            stat.st_mode & 0o7777
        ));
    }
    if stat.st_nlink != 1 {
        // As the start refuses it: another name of the inode may be any file whose flock holder is
        // not our daemon.
        return refuse(&format!("it has {} hard links", stat.st_nlink));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if stat.st_uid != 0 && stat.st_uid != euid {
        return refuse(&format!(
            "it is owned by uid {}, neither root nor the caller (uid {euid})",
            stat.st_uid
        ));
    }
    Ok(Some(LockFile {
        ids: locks::ids(fd.as_fd(), stat.st_dev, stat.st_ino),
        fd,
        path: path.to_path_buf(),
        dev: stat.st_dev,
        ino: stat.st_ino,
        uid: stat.st_uid,
        size: stat.st_size,
    }))
}

/// Refuses when `/proc` is not the procfs of the caller's pid namespace (`unshare --pid --fork` without
/// `--mount-proc`, `nsenter -m` into a container, a sandbox that binds the host's `/proc`): the pids
/// found there are then numbered in another namespace than the one `pidfd_open` resolves them in, so
/// a holder found there could pin (and a stop kill) an unrelated process.
pub(super) fn proc_is_ours() -> Result<(), Refusal> {
    let own = std::process::id();
    let seen = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str().and_then(|s| s.parse::<u32>().ok()));
    if seen == Some(own) {
        return Ok(());
    }
    let seen = seen.map_or_else(|| "no pid".to_string(), |pid| format!("pid {pid}"));
    Err(Refusal::new(format!(
        "/proc is not the procfs of this process's pid namespace (/proc/self names {seen}, this process is pid {own}), so the lock's holder cannot be identified; mount a procfs for this namespace (unshare --mount-proc) or run the command in the daemon's namespace"
    )))
}

/// The pid `pidfd` refers to, numbered in `/proc`'s pid namespace (the `Pid:` line of its fdinfo; 0 or
/// -1 when the process is outside that namespace or gone).
pub(super) fn pidfd_pid(pidfd: &OwnedFd) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    status_field(&info, "Pid")?.parse().ok()
}

/// How long `inspect` keeps looking at a lock held by no process it can take for a daemon (another
/// action's clean-up, a daemon on its way out) before it refuses.
const SETTLE: Duration = Duration::from_secs(1);

/// Finds the lock's holder, as far as the files and the kernel say (see holder.rs): the pids the record
/// and the pid file name, each verified through its own descriptors; else whether anyone holds the
/// lock, asked by taking it shared (see `holder::probe`); only then `/proc/locks`.
pub(super) fn inspect(target: &Target) -> Result<Found, Refusal> {
    inspect_until(target, Instant::now() + holder::DEADLINE)
}

/// [`inspect`], within `deadline`.
fn inspect_until(target: &Target, deadline: Instant) -> Result<Found, Refusal> {
    proc_is_ours()?;
    let dir = pin_dir(target)?;
    let lock_file = lock_path(&target.pid_file);
    let lock = pin(&dir, &lock_file, "lock file")?;
    let Some(lock) = lock else {
        return Ok(Found::Stopped(stopped(target, &dir, None, None)));
    };
    // A holder the files do not name, or one this caller may not look at: the kernel's table. Another
    // action's clean-up holds the lock for a moment (exclusively, through a read-only descriptor, which
    // is no daemon's), a daemon on its way out keeps it a moment after its descriptors are gone, and an
    // upgrade's old daemon may exit between the reading of the files that name it and its check, while
    // the table names whoever took the lock first (an flock keeps its first holder's pid however often
    // it is handed over): what looks like any of these is looked at again, the files first, for up to
    // `SETTLE`, before it is refused.
    let settle = (Instant::now() + SETTLE).min(deadline);
    let mut pause = Duration::from_millis(10);
    let root = nix::unistd::geteuid().is_root();
    loop {
        let candidates = candidates(target, &lock);
        for &(pid, fd) in &candidates {
            match holder::verify(pid, &lock, fd, deadline) {
                Ok(Verdict::Holds) if may_hold(&lock, pid, target)? => {
                    return Ok(Found::Running { pid, lock });
                }
                Ok(Verdict::Holds | Verdict::DoesNot | Verdict::Unseen) => {}
                Err(holder::TimedOut) => return Err(Refusal::timed_out(&lock)),
            }
        }
        let held = match holder::probe(&lock) {
            Some(Probe::Free(taken)) => {
                return Ok(Found::Stopped(stopped(
                    target,
                    &dir,
                    Some(lock),
                    Some(taken),
                )));
            }
            Some(Probe::Held) => true,
            // This caller may not open the lock file (the daemon's user, a monitoring user).
            None => false,
        };
        let named = holder::from_table(&lock.ids, deadline)
            .map_err(|e| Refusal::io("read", Path::new(locks::PATH), &e))?;
        let refusal = match named {
            None if held => Refusal::new(format!(
                "lock file {} is locked, but /proc/locks names no holder for it (a holder in another pid namespace, or a file system whose lock entries name another device), so its holder cannot be identified",
                lock_file.display()
            )),
            None => return Ok(Found::Stopped(stopped(target, &dir, Some(lock), None))),
            Some(pid) if pid <= 0 => {
                return Err(Refusal::new(format!(
                    "lock file {} is held by a process outside this pid namespace",
                    lock_file.display()
                )));
            }
            Some(pid) => {
                let verdict = holder::verify(pid, &lock, None, deadline)
                    .map_err(|holder::TimedOut| Refusal::timed_out(&lock))?;
                let daemon = match verdict {
                    Verdict::Holds => true,
                    // A daemon on its way out has closed its descriptors before the kernel drops its
                    // lock: the one its files name is the holder, leaving.
                    Verdict::DoesNot => {
                        candidates.iter().any(|(named, _)| *named == pid) && exiting(pid)
                    }
                    // A caller who may not look at the holder's descriptors (a monitoring user; the
                    // daemon's own user, where the daemon is not dumpable) takes the kernel's word: it
                    // cannot signal another user's process anyway. Root never does.
                    Verdict::Unseen => !root,
                };
                if !daemon {
                    Refusal::new(format!(
                        "refusing to act on pid {pid}, which /proc/locks names as the holder of {}: none of its descriptors holds the lock as a daemon's does (it is held through a read-only descriptor, or one another process shares)",
                        lock_file.display()
                    ))
                } else if may_hold(&lock, pid, target)? {
                    return Ok(Found::Running { pid, lock });
                } else {
                    Refusal::new(format!(
                        "the holder of {} (pid {pid}) exited while it was looked at; try again",
                        lock_file.display()
                    ))
                }
            }
        };
        if Instant::now() + pause >= settle {
            return Err(refusal);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The pids the daemon's files name, read now: the record's (with the descriptor it names) first, then
/// the pid file's.
fn candidates(target: &Target, lock: &LockFile) -> Vec<(i32, Option<i32>)> {
    let mut candidates = vec![];
    for (pid, fd) in [
        holder::record_of(lock),
        holder::pid_file_pid(&target.pid_file).map(|pid| (pid, None)),
    ]
    .into_iter()
    .flatten()
    {
        if !candidates.iter().any(|(seen, _)| *seen == pid) {
            candidates.push((pid, fd));
        }
    }
    candidates
}

/// What a stopped daemon left.
pub(super) fn stopped(
    target: &Target,
    dir: &Dir,
    lock: Option<LockFile>,
    taken: Option<std::fs::File>,
) -> Stopped {
    // The pid file is looked at only once the lock says nobody holds it: stop and reload never use
    // it for anything but a candidate, so what it has become (a symlink, another user's file) must not
    // block them (review F7).
    let (pid_file, refused) = match pin(dir, &target.pid_file, "pid file") {
        Ok(found) => (found.map(|file| file.size == 0), None),
        Err(refusal) => (Some(false), Some(refusal.message)),
    };
    Stopped {
        pid_file,
        lock,
        refused,
        taken,
    }
}

/// Whether the holder is the daemon's own: not PID 1, and running (real and effective uid) as the
/// daemon's user, the configured `user`, or without one the lock file's owner (who started it). A flock
/// belongs to the open file, so a compromised daemon could hand its descriptor to any process that
/// takes descriptors (a root service keeping them, systemd's fd store) and have root's `stop` signal
/// that process (review of issue 18, finding 1): only a process that runs as the daemon's user is
/// ever acted on. `Ok(false)` when the process is gone.
pub(super) fn may_hold(lock: &LockFile, pid: i32, target: &Target) -> Result<bool, Refusal> {
    let Some(uids) = proc_uids(pid) else {
        return Ok(false);
    };
    let expected = target.user.unwrap_or(lock.uid);
    let (real, effective) = (uids.first().copied(), uids.get(1).copied());
    if pid != 1 && real == Some(expected) && effective == Some(expected) {
        return Ok(true);
    }
    Err(Refusal::new(format!(
        "refusing to act on pid {pid}, which holds the lock of {}: it runs as uid {}, not as the daemon's user (uid {expected}){}",
        lock.path.display(),
        effective.map_or_else(|| "?".to_string(), |uid| uid.to_string()),
        if pid == 1 { ", and it is PID 1" } else { "" }
    )))
}

/// Whether `pid` is exiting: `PF_EXITING` in the flags of /proc/PID/stat, or already a zombie. Between
/// closing its descriptors and releasing their locks, an exiting process is still named by /proc/locks.
pub(super) fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, after_comm)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = after_comm.split_whitespace();
    let state = fields.next();
    let flags = fields.nth(5).and_then(|f| f.parse::<u64>().ok());
    matches!(state, Some("Z" | "X")) || flags.is_some_and(|f| f & PF_EXITING != 0)
}

/// The real, effective, saved and filesystem uids of `pid`.
pub(super) fn proc_uids(pid: i32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field(&status, "Uid")?
        .split_whitespace()
        .map(|u| u.parse().ok())
        .collect()
}

pub(super) fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// The holder, pinned by a pidfd and checked again after: the pid found may have exited and been
/// recycled between that finding and `pidfd_open`, so the lock must still be held by it once the pidfd
/// pins the process. `Err(Stopped)` when nobody holds the lock (any more).
pub(super) fn pin_holder(
    target: &Target,
    action: Action,
) -> Result<Result<(i32, OwnedFd, LockFile), Stopped>, Outcome> {
    // One deadline for every look: a compromised daemon that shares its lock with other processes of its
    // user and names another one at each look must not multiply the time root's action takes.
    let deadline = Instant::now() + holder::DEADLINE;
    for _ in 0..5 {
        let pid = match inspect_until(target, deadline).map_err(|r| r.outcome(action))? {
            Found::Stopped(stopped) => return Ok(Err(stopped)),
            Found::Running { pid, .. } => pid,
        };
        let pidfd = match pidfd_open(nix::unistd::Pid::from_raw(pid)) {
            Ok(pidfd) => pidfd,
            // Gone between the two looks: look again.
            Err(Errno::ESRCH) => continue,
            Err(errno) => {
                return Err(Outcome::new(
                    action,
                    1,
                    format!(
                        "cannot pin pid {pid} (pidfd_open): {}",
                        io::Error::from(errno)
                    ),
                ));
            }
        };
        // The pidfd must pin the very process found: the same number in /proc's pid namespace (a /proc
        // of another namespace is refused up front; this holds even if it is swapped under us).
        let pinned = pidfd_pid(&pidfd);
        if pinned == Some(-1) {
            // Exited since pidfd_open: look again.
            continue;
        }
        if pinned != Some(pid) {
            return Err(Refusal::new(format!(
                "refusing to act on pid {pid}: the process pidfd_open pinned is {} in /proc's pid namespace, so /proc is not this pid namespace's",
                pinned.map_or_else(|| "unknown".to_string(), |p| p.to_string())
            ))
            .outcome(action));
        }
        match inspect_until(target, deadline).map_err(|r| r.outcome(action))? {
            Found::Running { pid: now, lock } if now == pid => {
                return Ok(Ok((pid, pidfd, lock)));
            }
            // The holder changed under us (a restart): look again.
            _ => {}
        }
    }
    Err(Outcome::new(
        action,
        1,
        format!(
            "the holder of {} kept changing; try again",
            lock_path(&target.pid_file).display()
        ),
    ))
}
