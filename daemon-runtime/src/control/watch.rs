//! Waiting for the daemon's answer in its record (pidfile/record.rs): inotify on the lock file, woken only
//! by a completed write (`IN_CLOSE_WRITE`, and the daemon's own writes), read and checked whole.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::Action;
use super::outcome::Outcome;
use crate::pidfile::holder::{self, LockFile};
use crate::pidfile::record::{self, Answer};
use crate::sys::process::poll_timeout;

/// An answer to wait for: a reload, or a reopen, numbered above the one given.
#[derive(Clone, Copy)]
pub(super) enum Expect {
    Reload(u64),
    Reopen(u64),
}

/// The lock file open for reading, watched with inotify.
pub(super) struct Watch {
    file: std::fs::File,
    inotify: Inotify,
}

impl Watch {
    pub(super) fn new(lock: &LockFile) -> io::Result<Watch> {
        let file = holder::reopen(lock)?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        // Through /proc/self/fd: the watch lands on the very inode we pinned.
        inotify.add_watch(
            format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_DELETE_SELF,
        )?;
        Ok(Watch { file, inotify })
    }

    pub(super) fn read(&self) -> Option<record::Parsed> {
        use std::os::unix::fs::FileExt;
        let mut buffer = [0u8; 2048];
        let n = self.file.read_at(&mut buffer, 0).ok()?;
        record::parse(&buffer[..n])
    }

    /// Waits until every expected answer came; the first failure ends the wait.
    pub(super) fn wait(
        &self,
        action: Action,
        pidfd: &OwnedFd,
        pid: i32,
        expected: &[Expect],
        timeout: Duration,
        success: &str,
    ) -> Outcome {
        let deadline = Instant::now().checked_add(timeout);
        let mut delivered = false;
        loop {
            if let Some(record) = self.read() {
                let answers: Vec<(&str, &Answer, bool)> = expected
                    .iter()
                    .map(|expect| match *expect {
                        Expect::Reload(seq) => ("reload", &record.reload, record.seq > seq),
                        Expect::Reopen(seq) => ("reopen", &record.reopen, record.reopen_seq > seq),
                    })
                    .map(|(what, answer, newer)| {
                        (what, if newer { answer } else { &Answer::None }, newer)
                    })
                    .collect();
                delivered |= answers.iter().any(|(_, _, newer)| *newer);
                if let Some((what, Answer::Failed(message), _)) = answers
                    .iter()
                    .find(|(_, answer, _)| matches!(answer, Answer::Failed(_)))
                {
                    // The daemon wrote this; never pass its control characters to a terminal.
                    let message: String = message
                        .chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect();
                    let what = if *what == "reload" {
                        "reload"
                    } else {
                        "reopen of the log files"
                    };
                    return Outcome::new(
                        action,
                        1,
                        format!("{what} failed (pid {pid}): {message}"),
                    )
                    .with_pid(pid);
                }
                if answers.iter().all(|(_, answer, _)| **answer == Answer::Ok) {
                    return Outcome::new(action, 0, success).with_pid(pid);
                }
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                let what = match (delivered, action) {
                    (true, Action::Reload) => {
                        "took the reload but did not say how it went (reloaded() or reload_failed())"
                    }
                    (true, _) => "took the request to reopen its log files but did not answer",
                    (false, Action::Reload) => "did not take the reload",
                    (false, _) => "did not take the request to reopen its log files",
                };
                return Outcome::new(action, 1, format!("pid {pid} {what} within {timeout:?}"))
                    .with_pid(pid);
            }
            let mut fds = [
                PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, poll_timeout(left)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    return Outcome::new(
                        action,
                        1,
                        format!(
                            "cannot wait for pid {pid}'s answer: {}",
                            io::Error::from(errno)
                        ),
                    );
                }
            }
            if fds[1].any() == Some(true) {
                return Outcome::new(action, 1, format!("pid {pid} exited during the {action}"));
            }
            // Drain the events; the record is read again above.
            while let Ok(events) = self.inotify.read_events() {
                if events.is_empty() {
                    break;
                }
            }
        }
    }
}
