//! The actions on Linux: `status`, `stop`, `reload`, `reopen-logs`, each on the lock's verified holder,
//! signalled through a pidfd (Linux 5.3) and waited for without sleeping.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::Signal;

use super::find::{Found, Refusal, Stopped, inspect, pin_dir, pin_holder, proc_uids, status_field};
use super::outcome::Outcome;
use super::schedule::{Item, Schedule};
use super::watch::{Expect, Watch};
use super::{Action, Target};
use crate::pidfile::holder::{self, LockFile, Probe};
use crate::pidfile::locks;
use crate::sys::process::{pidfd_send, pidfd_wait, poll_timeout};

pub(super) fn status(target: &Target) -> Outcome {
    let pid_file = &target.pid_file;
    match inspect(target) {
        Err(refusal) => {
            let mut outcome = refusal.outcome(Action::Status);
            outcome.message = format!("cannot tell whether it runs: {}", outcome.message);
            outcome
        }
        Ok(Found::Stopped(Stopped { pid_file: None, .. })) => {
            Outcome::new(Action::Status, 3, "not running")
        }
        // What a clean exit leaves where the daemon could not remove its files: an empty pid file
        // (a daemon that kept it open), or an empty lock file (the daemon empties its record last).
        Ok(Found::Stopped(Stopped {
            pid_file: Some(true),
            ..
        })) => Outcome::new(Action::Status, 3, "not running"),
        Ok(Found::Stopped(Stopped {
            lock: Some(lock),
            refused: None,
            ..
        })) if lock.size == 0 => Outcome::new(
            Action::Status,
            3,
            format!(
                "not running (it exited cleanly; its pid file {} is left for the next start)",
                pid_file.display()
            ),
        ),
        Ok(Found::Stopped(Stopped { refused, .. })) => Outcome::new(
            Action::Status,
            1,
            format!(
                "not running, but pid file {} exists (no process holds its lock{})",
                pid_file.display(),
                refused.map_or(String::new(), |why| format!("; {why}"))
            ),
        ),
        Ok(Found::Running { pid, .. }) => {
            let mut outcome =
                Outcome::new(Action::Status, 0, format!("running (pid {pid})")).with_pid(pid);
            outcome.uptime = uptime(pid);
            outcome.user = proc_uids(pid)
                .and_then(|uids| uids.get(1).copied())
                .map(user_name);
            outcome
        }
    }
}

/// How long `pid` has run: /proc/uptime minus its start time (field 22 of /proc/PID/stat, in clock
/// ticks since boot).
fn uptime(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let started_ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    let started = Duration::from_secs(started_ticks / ticks)
        + Duration::from_nanos((started_ticks % ticks) * 1_000_000_000 / ticks);
    let boot = std::fs::read_to_string("/proc/uptime").ok()?;
    let up = Duration::try_from_secs_f64(boot.split_whitespace().next()?.parse().ok()?).ok()?;
    Some(up.saturating_sub(started))
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

fn denied(action: Action, signal: Signal, pid: i32) -> Outcome {
    Outcome::new(
        action,
        4,
        format!(
            "permission denied: cannot send {} to pid {pid} as uid {} (run as root or as the daemon's user)",
            signal.as_str(),
            nix::unistd::geteuid()
        ),
    )
    .with_pid(pid)
}

/// Removes what a stopped daemon left, where this caller holds the lock that proves nobody else does.
fn clean_up(target: &Target, stopped: &Stopped) {
    if let Some(taken) = &stopped.taken {
        remove_left(target, taken);
    }
}

/// Removes what a daemon that is gone left, under the lock `taken` (which the probe took shared), made
/// exclusive for it: one removal at a time. Where another action holds it shared meanwhile, the
/// conversion fails (and gives the lock up), and is tried again a few times; after that the files stay,
/// for that action or the next start. (Between tries a daemon may start on the same file: it then holds
/// the lock, and the conversion keeps failing.)
fn remove_left(target: &Target, taken: &std::fs::File) {
    for attempt in 1..=5 {
        if taken.try_lock().is_ok() {
            if let Ok(dir) = pin_dir(target) {
                crate::pidfile::remove_left_files(&dir, &target.pid_file, taken);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10 * attempt));
    }
}

pub(super) fn stop(target: &Target, schedule: &Schedule) -> Outcome {
    let (pid, pidfd, lock) = match pin_holder(target, Action::Stop) {
        Err(outcome) => return outcome,
        Ok(Err(stopped)) => {
            // Stopping a stopped daemon succeeds (LSB); what it left goes, as after a stop.
            clean_up(target, &stopped);
            return Outcome::new(Action::Stop, 0, "not running (already stopped)");
        }
        Ok(Ok(pinned)) => pinned,
    };
    let mut last = None;
    let mut index = 0;
    loop {
        if index == schedule.items.len() {
            match schedule.repeat_from {
                Some(from) => index = from,
                None => break,
            }
        }
        match schedule.items[index] {
            Item::Signal(signal) => match pidfd_send(&pidfd, signal) {
                Ok(()) => last = Some(signal),
                Err(Errno::ESRCH) => return released(target, pid, &lock, last, schedule),
                Err(Errno::EPERM) => return denied(Action::Stop, signal, pid),
                Err(errno) => {
                    return Outcome::new(
                        Action::Stop,
                        1,
                        format!("cannot signal pid {pid}: {}", io::Error::from(errno)),
                    )
                    .with_pid(pid);
                }
            },
            Item::Wait(timeout) => match pidfd_wait(&pidfd, timeout) {
                Ok(true) => return released(target, pid, &lock, last, schedule),
                Ok(false) => {}
                Err(errno) => {
                    return Outcome::new(
                        Action::Stop,
                        1,
                        format!("cannot wait for pid {pid}: {}", io::Error::from(errno)),
                    )
                    .with_pid(pid);
                }
            },
        }
        index += 1;
    }
    if pidfd_wait(&pidfd, Duration::ZERO) == Ok(true) {
        return released(target, pid, &lock, last, schedule);
    }
    Outcome::new(
        Action::Stop,
        1,
        format!("pid {pid} is still running at the end of the stop schedule"),
    )
    .with_pid(pid)
}

/// The process has exited: its lock went with its last descriptor, unless a process it spawned
/// shares that descriptor. Waits for the lock too, bounded by the schedule's time, without reading
/// the global lock table where this caller may take the lock to ask (root: the lock then proves that
/// nobody holds it, and what the daemon could not remove is removed under it, as start-stop-daemon's
/// `--remove-pidfile` does).
fn released(
    target: &Target,
    pid: i32,
    lock: &LockFile,
    last: Option<Signal>,
    schedule: &Schedule,
) -> Outcome {
    let by = last.map_or(String::new(), |s| format!(", {}", s.as_str()));
    let stopped = Outcome::new(Action::Stop, 0, format!("stopped (pid {pid}{by})")).with_pid(pid);
    // An `upgrade` holds its lock on the lock file while its new daemon, which shares the lock, gets
    // ready: a daemon that exits then leaves its files to that one, which holds the lock for its life.
    let upgrading =
        || holder::reopen(lock).is_ok_and(|file| crate::sys::fd::ofd_write_locked(&file));
    let still_held = |upgrading: bool| {
        let by = if upgrading {
            "the new daemon of an upgrade in progress (stop it once the upgrade has finished)"
        } else {
            "a process that shares its descriptor"
        };
        Outcome::new(
            Action::Stop,
            1,
            format!(
                "pid {pid} exited, but its lock on {} is still held by {by}",
                lock.path.display()
            ),
        )
        .with_pid(pid)
    };
    // The daemon's descriptor being closed wakes the wait (inotify, where this user may watch it; it is
    // read-write, so IN_CLOSE_WRITE, which this process's own read-only probes do not raise: watching
    // every close turned the wait into a busy loop); else it looks again every 100 ms.
    let closes = holder::reopen(lock).ok().and_then(|file| {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        inotify
            .add_watch(
                format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
                AddWatchFlags::IN_CLOSE_WRITE,
            )
            .ok()?;
        Some(inotify)
    });
    let deadline = Instant::now().checked_add(schedule.total_wait().max(Duration::from_secs(1)));
    loop {
        match holder::probe(lock) {
            Some(Probe::Free(taken)) => {
                remove_left(target, &taken);
                return stopped;
            }
            Some(Probe::Held) if upgrading() => return still_held(true),
            Some(Probe::Held) => {}
            // This caller may not take the lock (the daemon's user): the kernel's table says.
            None => {
                let within = Instant::now() + holder::DEADLINE;
                match holder::from_table(&lock.ids, within) {
                    Ok(None) => return stopped,
                    Ok(Some(_)) => {}
                    Err(error) => {
                        return Refusal::io("read", Path::new(locks::PATH), &error)
                            .outcome(Action::Stop);
                    }
                }
            }
        }
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return still_held(upgrading());
        }
        let step = left.min(Duration::from_millis(100));
        match &closes {
            Some(inotify) => {
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, poll_timeout(step));
                while let Ok(events) = inotify.read_events() {
                    if events.is_empty() {
                        break;
                    }
                }
            }
            None => std::thread::sleep(step),
        }
    }
}

/// A signal's disposition in `pid`, from the `SigCgt` and `SigIgn` masks of /proc/PID/status:
/// `Some(true)` caught, `Some(false)` ignored, `None` default.
fn disposition(pid: i32, signal: Signal) -> Result<Option<bool>, Refusal> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|e| Refusal::io("read", Path::new(&path), &e))?;
    let bit = 1u64 << (signal as i32 - 1);
    let set = |name: &str| {
        status_field(&status, name)
            .and_then(|mask| u64::from_str_radix(mask, 16).ok())
            .map(|mask| mask & bit != 0)
    };
    match (set("SigCgt"), set("SigIgn")) {
        (Some(true), _) => Ok(Some(true)),
        (Some(false), Some(true)) => Ok(Some(false)),
        (Some(false), Some(false)) => Ok(None),
        _ => Err(Refusal::new(format!(
            "cannot read {}'s disposition in {path}",
            signal.as_str()
        ))),
    }
}

/// Refuses to send `signal` to a process that would die of it or ignore it.
fn handles(action: Action, pid: i32, signal: Signal, what: &str) -> Result<(), Outcome> {
    match disposition(pid, signal) {
        Err(refusal) => Err(refusal.outcome(action)),
        Ok(Some(true)) => Ok(()),
        Ok(Some(false)) => Err(Outcome::new(
            action,
            3,
            format!(
                "refusing to {action} pid {pid}: it ignores {}, so it would do nothing",
                signal.as_str()
            ),
        )
        .with_pid(pid)),
        Ok(None) => Err(Outcome::new(
            action,
            3,
            format!(
                "refusing to send {} to pid {pid}: it does not handle {}, whose default action would kill it ({what})",
                signal.as_str(),
                signal.as_str()
            ),
        )
        .with_pid(pid)),
    }
}

fn signal_error(action: Action, signal: Signal, pid: i32, errno: Errno) -> Outcome {
    match errno {
        Errno::EPERM => denied(action, signal, pid),
        Errno::ESRCH => Outcome::new(action, 7, "not running (it exited)"),
        errno => Outcome::new(
            action,
            1,
            format!("cannot signal pid {pid}: {}", io::Error::from(errno)),
        )
        .with_pid(pid),
    }
}

pub(super) fn reload(target: &Target, timeout: Duration) -> Outcome {
    let (pid, pidfd, lock) = match pin_holder(target, Action::Reload) {
        Err(outcome) => return outcome,
        Ok(Err(_)) => return Outcome::new(Action::Reload, 7, "not running"),
        Ok(Ok(pinned)) => pinned,
    };
    if let Err(outcome) = handles(
        Action::Reload,
        pid,
        Signal::SIGHUP,
        "the program must subscribe to Reload events",
    ) {
        return outcome;
    }
    // Watch the record before signalling, so that no answer can come unseen.
    let watch = Watch::new(&lock);
    let before = watch.as_ref().ok().and_then(Watch::read);
    if let Err(errno) = pidfd_send(&pidfd, Signal::SIGHUP) {
        return signal_error(Action::Reload, Signal::SIGHUP, pid, errno);
    }
    let signalled = |why: &str| {
        Outcome::new(
            Action::Reload,
            0,
            format!(
                "signalled pid {pid} with SIGHUP ({why}, so whether the reload worked is unknown)"
            ),
        )
        .with_pid(pid)
    };
    let watch = match watch {
        Ok(watch) => watch,
        Err(error) => {
            return signalled(&format!(
                "its answer cannot be read: {} {error}",
                lock.path.display()
            ));
        }
    };
    let Some(record) = before else {
        return signalled("it does not acknowledge reloads");
    };
    // With `reopen_logs_on = "SIGHUP"`, the same signal reopens the log files: a reopen that fails
    // fails the reload too, which otherwise would say nothing of it.
    let reopens = record.reopen_on == Some(libc::SIGHUP);
    let mut expected = vec![];
    if record.subscribed {
        expected.push(Expect::Reload(record.seq));
    }
    if reopens {
        expected.push(Expect::Reopen(record.reopen_seq));
    }
    if expected.is_empty() {
        return signalled("it does not acknowledge reloads");
    }
    let wanted = if record.subscribed {
        format!("reloaded (pid {pid})")
    } else {
        format!("reopened the log files (pid {pid})")
    };
    watch.wait(Action::Reload, &pidfd, pid, &expected, timeout, &wanted)
}

pub(super) fn reopen_logs(target: &Target, signal: Signal, timeout: Duration) -> Outcome {
    let action = Action::ReopenLogs;
    let (pid, pidfd, lock) = match pin_holder(target, action) {
        Err(outcome) => return outcome,
        Ok(Err(_)) => return Outcome::new(action, 7, "not running"),
        Ok(Ok(pinned)) => pinned,
    };
    let watch = Watch::new(&lock);
    let before = watch.as_ref().ok().and_then(Watch::read);
    // Where the record can be read, it must say that this signal reopens the log files: the
    // program may handle the signal for something else.
    if let Some(record) = &before
        && record.reopen_on != Some(signal as i32)
    {
        return Outcome::new(
                action,
                3,
                format!(
                    "refusing to send {} to pid {pid}: it does not reopen its log files on it (reopen_logs_on)",
                    signal.as_str()
                ),
            )
            .with_pid(pid);
    }
    if let Err(outcome) = handles(
        action,
        pid,
        signal,
        "it does not reopen its log files on it",
    ) {
        return outcome;
    }
    if let Err(errno) = pidfd_send(&pidfd, signal) {
        return signal_error(action, signal, pid, errno);
    }
    match (watch, before) {
        (Ok(watch), Some(record)) => watch.wait(
            action,
            &pidfd,
            pid,
            &[Expect::Reopen(record.reopen_seq)],
            timeout,
            &format!("reopened the log files (pid {pid})"),
        ),
        (Err(error), _) => Outcome::new(
            action,
            0,
            format!(
                "signalled pid {pid} with {} (its answer cannot be read: {} {error}, so whether the reopen worked is unknown)",
                signal.as_str(),
                lock.path.display()
            ),
        )
        .with_pid(pid),
        (Ok(_), None) => Outcome::new(
            action,
            0,
            format!(
                "signalled pid {pid} with {} (it keeps no record to answer in, so whether the reopen worked is unknown)",
                signal.as_str()
            ),
        )
        .with_pid(pid),
    }
}
