//! The pipe on which the daemon reports to the launcher: "ready", or the error that stopped it.
//!
//! A record is a tag byte, a 2-byte length and a payload, written with one `write(2)` of less than
//! `PIPE_BUF` bytes, so that it arrives whole.
//!
//! `upgrade` talks with its new daemon over a socket pair in place of the pipe, the same records plus one
//! answer: the new daemon's pid first (sent before it changes user), "ready", then it waits for
//! `upgrade`'s [`COMMIT`] (the pid file names it now) before it tells systemd and answers "ready" again, so
//! that an `upgrade` killed half-way never leaves two daemons serving.

use std::borrow::Cow;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::error::{Error, Step};
use crate::sys::signal::holding;

const TAG_READY: u8 = b'R';
const TAG_ERROR: u8 = b'E';
/// More time before the deadline: the payload is the extension in microseconds (u64, little-endian).
const TAG_EXTEND: u8 = b'T';
/// The daemon's pid (u32, little-endian), for a waiter that may have to end it (`upgrade`).
const TAG_PID: u8 = b'P';
/// `upgrade`'s answer to a new daemon's first "ready": the pid file names it now, so it may tell systemd
/// and serve alone (see `Reporter::ready_for_commit`). The channel is a socket pair for this.
pub(crate) const COMMIT: u8 = b'C';
/// The longest subject or detail sent; longer text is cut at a character boundary and marked as cut.
const MAX_TEXT: usize = 1500;
/// The longest mark put after a cut text: ` [… 18446744073709551615 more bytes cut]`.
const MAX_MARK: usize = 48;
// Two texts, their marks and the fixed fields fit in one write below PIPE_BUF (4096 on Linux, 512 at
// least by POSIX: a record is written whole, or the launcher sees it cut, which it reports as malformed).
const _: () = assert!(3 + 5 + 2 * (3 + MAX_TEXT + MAX_MARK) < 4096);

/// The daemon's end of the pipe.
pub(crate) struct Reporter {
    fd: OwnedFd,
}

impl Reporter {
    pub(crate) fn new(fd: OwnedFd) -> Reporter {
        Reporter { fd }
    }

    /// Tells the launcher the daemon is ready; closes the pipe.
    pub(crate) fn ready(self) {
        self.send(TAG_READY, &[]);
    }

    /// Tells the launcher why the daemon failed; closes the pipe.
    pub(crate) fn fail(self, error: &Error) {
        self.send(TAG_ERROR, &encode_error(error));
    }

    /// [`fail`](Reporter::fail) through a borrowed reporter, for a process about to end.
    pub(crate) fn fail_in_place(&self, error: &Error) {
        self.send(TAG_ERROR, &encode_error(error));
    }

    /// Tells the launcher why the daemon failed, and ends this process without running destructors or
    /// atexit handlers (a forked child's copies of the launcher's objects are not its own).
    pub(crate) fn fail_and_exit(self, error: &Error) -> ! {
        self.fail(error);
        crate::sys::process::exit_now(1)
    }

    /// For `upgrade`: tells it this daemon is ready, then waits up to `wait` for its word that the pid
    /// file names this daemon now ([`COMMIT`]). `false` when `upgrade` is gone (killed, or stopped by
    /// systemd's timeout of `ExecReload=`), gave up, or said nothing in time: this daemon is then not
    /// wanted, and the old one serves on.
    pub(crate) fn ready_for_commit(&self, wait: Duration) -> bool {
        self.send(TAG_READY, &[]);
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(0) if left.is_zero() => return false,
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return false,
            }
            let mut byte = [0u8; 1];
            match nix::unistd::read(&self.fd, &mut byte) {
                Ok(1) => return byte[0] == COMMIT,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Ok(_) | Err(_) => return false,
            }
        }
    }

    /// Tells the waiter this process's pid.
    pub(crate) fn pid(&self, pid: u32) {
        self.send(TAG_PID, &pid.to_le_bytes());
    }

    /// Asks the launcher to wait at least `extra` from now (`EXTEND_TIMEOUT_USEC=` of the fork mode).
    pub(crate) fn extend(&self, extra: Duration) {
        let micros = u64::try_from(extra.as_micros()).unwrap_or(u64::MAX);
        self.send(TAG_EXTEND, &micros.to_le_bytes());
    }

    fn send(&self, tag: u8, payload: &[u8]) {
        // "Ready" and "extend" fit on the stack: no allocation in the daemon on its way to ready.
        let mut short = [0u8; 16];
        let long;
        let record: &[u8] = match u16::try_from(payload.len()) {
            Ok(len) if payload.len() + 3 <= short.len() => {
                short[0] = tag;
                short[1..3].copy_from_slice(&len.to_le_bytes());
                short[3..3 + payload.len()].copy_from_slice(payload);
                &short[..3 + payload.len()]
            }
            _ => {
                let mut record = Vec::with_capacity(3 + payload.len());
                record.push(tag);
                put_len(&mut record, payload);
                long = record;
                &long
            }
        };
        // A failed write means the launcher is gone: nobody is left to tell, so it is not an error here.
        // SIGPIPE is held back in this thread during the write (a pipe has no MSG_NOSIGNAL), so a program
        // that set it back to SIG_DFL is not killed by the report: the write just fails with EPIPE.
        holding(Signal::SIGPIPE, || {
            let mut rest = record;
            while !rest.is_empty() {
                match nix::unistd::write(&self.fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
        });
    }
}

/// Appends `bytes` after their length as 2 little-endian bytes. Records are far below 64 KiB (see
/// `MAX_TEXT`); were one longer, its bytes would be cut to the length sent, so the two always agree.
fn put_len(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

fn encode_error(error: &Error) -> Vec<u8> {
    let mut out = vec![error.step().code()];
    out.extend_from_slice(&error.errno().unwrap_or(0).to_le_bytes());
    for text in [error.subject(), error.detail()] {
        match text {
            None => out.push(0),
            Some(text) => {
                out.push(1);
                put_len(&mut out, truncate(text).as_bytes());
            }
        }
    }
    out
}

/// `text`, or its first `MAX_TEXT` bytes (at a character boundary) followed by a mark saying how much was
/// cut, so that a cut path never reads as a whole one.
fn truncate(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_TEXT {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{} [… {} more bytes cut]",
        &text[..end],
        text.len() - end
    ))
}

fn decode_error(payload: &[u8]) -> Option<Error> {
    let step = Step::from_code(*payload.first()?)?;
    let errno = i32::from_le_bytes(payload.get(1..5)?.try_into().ok()?);
    let mut rest = payload.get(5..)?;
    let mut texts = [None, None];
    for text in &mut texts {
        let (&present, after) = rest.split_first()?;
        rest = after;
        if present == 1 {
            let len = usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?));
            *text = Some(String::from_utf8_lossy(rest.get(2..2 + len)?).into_owned());
            rest = &rest[2 + len..];
        }
    }
    let [subject, detail] = texts;
    let error = Error::new(step, subject, (errno != 0).then_some(errno));
    Some(match detail {
        Some(detail) => error.with_detail(detail),
        None => error,
    })
}

/// What the launcher learnt from the pipe.
#[derive(Debug, PartialEq)]
pub(crate) enum Report {
    Ready,
    Failed(Error),
    /// The pipe closed before any "ready" or error record.
    Closed,
    /// No record within the timeout.
    TimedOut,
}

/// The launcher's end: reads records until "ready", an error, end of file or the timeout (a timeout too
/// large to represent waits forever).
pub(crate) fn wait(fd: &OwnedFd, timeout: Duration) -> Result<Report, Error> {
    wait_telling_pid(fd, timeout, &mut |_| {})
}

/// [`wait`], calling `on_pid` with the pid a pid record names.
pub(crate) fn wait_telling_pid(
    fd: &OwnedFd,
    timeout: Duration,
    on_pid: &mut dyn FnMut(u32),
) -> Result<Report, Error> {
    let mut deadline = Instant::now().checked_add(timeout);
    let mut buffer = Vec::with_capacity(64);
    loop {
        if let Some((TAG_PID, payload)) = split_record(&buffer) {
            if let Ok(pid) = payload.try_into().map(u32::from_le_bytes) {
                on_pid(pid);
            }
            buffer.drain(..3 + payload.len());
            continue;
        }
        if let Some((TAG_EXTEND, payload)) = split_record(&buffer) {
            let micros = payload.try_into().map_or(0, u64::from_le_bytes);
            let wanted = Instant::now().checked_add(Duration::from_micros(micros));
            // Like systemd: the deadline moves to at least now + the extension, never earlier.
            deadline = deadline.and_then(|d| wanted.map(|w| d.max(w)));
            buffer.drain(..3 + payload.len());
            continue;
        }
        if let Some((tag, payload)) = split_record(&buffer) {
            return Ok(match tag {
                TAG_READY => Report::Ready,
                _ => Report::Failed(decode_error(payload).unwrap_or_else(|| {
                    Error::new(Step::Handshake, None, None).with_detail("malformed error record")
                })),
            });
        }
        // Past the deadline, one last look without waiting: a record that arrived just as the time ran out
        // (while the previous poll was returning) still counts.
        let (timeout, last) = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up, so that less than a millisecond left is not a busy loop of zero timeouts.
                let millis = if left.is_zero() {
                    0
                } else {
                    left.as_millis().max(1)
                };
                (
                    PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX)),
                    left.is_zero(),
                )
            }
            None => (PollTimeout::NONE, false),
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) if last => return Ok(Report::TimedOut),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(errno) => return Err(Error::os(Step::Handshake, None, errno)),
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return Ok(Report::Closed),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(errno) => return Err(Error::os(Step::Handshake, None, errno)),
        }
    }
}

/// One whole record at the front of `buffer`: (tag, payload). A "ready" or error record ends the
/// handshake, so nothing after it matters; an extension record is consumed and reading goes on.
fn split_record(buffer: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = buffer.split_first()?;
    let len = usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?));
    Some((tag, rest.get(2..2 + len)?))
}

/// The variable in which `upgrade` tells the new daemon what the old one hands over.
pub(crate) const UPGRADE_ENV: &str = "DAEMON_UPGRADE";

/// Whether `upgrade` started this process (before the start takes the variable over): it is to take
/// over from the running daemon, so it must not stop it (`restart` only starts, `stop` refuses).
#[cfg(feature = "control")]
pub(crate) fn upgrade_requested() -> bool {
    std::env::var_os(UPGRADE_ENV).is_some()
}

/// What `upgrade` hands the new daemon: the old daemon's pid, the descriptor numbers (inherited) of the
/// lock, of the pipe to report on, and of each listening socket with its name. In the environment as
/// `v1 pid=4242 lock=3 report=4 listen=http:5 listen=admin:6`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Handover {
    pub(crate) predecessor: u32,
    pub(crate) lock: i32,
    pub(crate) report: i32,
    pub(crate) listens: Vec<(String, i32)>,
}

impl Handover {
    #[cfg(all(feature = "control", target_os = "linux"))]
    pub(crate) fn encode(&self) -> String {
        use std::fmt::Write as _;
        let mut text = format!(
            "v1 pid={} lock={} report={}",
            self.predecessor, self.lock, self.report
        );
        for (name, fd) in &self.listens {
            let _ = write!(text, " listen={name}:{fd}");
        }
        text
    }

    /// `None` for anything but what [`Handover::encode`] writes.
    pub(crate) fn parse(text: &str) -> Option<Handover> {
        let mut words = text.split(' ');
        if words.next()? != "v1" {
            return None;
        }
        let number = |word: Option<&str>, key: &str| -> Option<i32> {
            word?
                .strip_prefix(key)?
                .parse()
                .ok()
                .filter(|n: &i32| *n > 2)
        };
        let predecessor = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let lock = number(words.next(), "lock=")?;
        let report = number(words.next(), "report=")?;
        let mut listens = Vec::new();
        for word in words {
            let (name, fd) = word.strip_prefix("listen=")?.rsplit_once(':')?;
            let fd = fd.parse().ok().filter(|n: &i32| *n > 2)?;
            listens.push((name.to_string(), fd));
        }
        Some(Handover {
            predecessor,
            lock,
            report,
            listens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_records_round_trip() {
        let errors = [
            Error::new(Step::Chdir, Some("/var/lib/app".into()), Some(2)),
            Error::new(Step::NotReady, None, None).with_detail("main returned Err(\"x\")"),
            Error::new(Step::AlreadyRunning, Some("(pid 7)".into()), None)
                .with_detail("é".repeat(2000)),
        ];
        for error in errors {
            let decoded = decode_error(&encode_error(&error)).unwrap();
            assert_eq!(decoded.step(), error.step());
            assert_eq!(decoded.subject(), error.subject());
            assert_eq!(
                decoded.os_error().map(|e| e.raw_os_error()),
                error.os_error().map(|e| e.raw_os_error())
            );
            let detail = decoded.detail().unwrap_or("");
            let kept = detail.split(" [… ").next().unwrap_or("");
            assert!(error.detail().unwrap_or("").starts_with(kept));
        }
    }

    #[test]
    fn malformed_records_are_rejected() {
        assert!(decode_error(&[]).is_none());
        assert!(decode_error(&[250, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(decode_error(&[0, 0, 0, 0, 0, 1, 9, 0, b'a']).is_none());
        assert_eq!(split_record(&[b'R', 1, 0]), None);
        assert_eq!(split_record(&[b'R', 0, 0, 9]), Some((b'R', &[][..])));
    }

    #[test]
    fn records_cross_a_real_pipe() {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        Reporter::new(wr).fail(&Error::new(Step::Chroot, Some("/jail".into()), Some(2)));
        match wait(&rd, Duration::from_secs(5)).unwrap() {
            Report::Failed(e) => assert_eq!(
                e.to_string(),
                "cannot change root to /jail: No such file or directory (os error 2)"
            ),
            other => panic!("{other:?}"),
        }
        let (rd, wr) = nix::unistd::pipe().unwrap();
        drop(wr);
        assert_eq!(wait(&rd, Duration::from_secs(5)).unwrap(), Report::Closed);
        let (rd, wr) = nix::unistd::pipe().unwrap();
        assert_eq!(
            wait(&rd, Duration::from_millis(20)).unwrap(),
            Report::TimedOut
        );
        Reporter::new(wr).ready();
        assert_eq!(wait(&rd, Duration::MAX).unwrap(), Report::Ready);
    }

    #[test]
    fn a_record_there_at_the_deadline_is_read() {
        // With no time left at all, the record already in the pipe is still read once.
        let (rd, wr) = nix::unistd::pipe().unwrap();
        Reporter::new(wr).ready();
        assert_eq!(wait(&rd, Duration::ZERO).unwrap(), Report::Ready);
    }

    #[test]
    fn a_cut_text_says_so() {
        let path = format!("/{}", "d/".repeat(1000));
        let error = Error::new(Step::Chdir, Some(path.clone()), Some(2));
        let decoded = decode_error(&encode_error(&error)).unwrap();
        let subject = decoded.subject().unwrap();
        assert!(subject.starts_with(&path[..MAX_TEXT]));
        assert!(subject.ends_with(&format!(" [… {} more bytes cut]", path.len() - MAX_TEXT)));
        assert!(subject.len() <= MAX_TEXT + MAX_MARK);
    }

    #[test]
    fn an_extension_moves_the_deadline() {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let reporter = Reporter::new(wr);
        reporter.extend(Duration::from_secs(30));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            reporter.ready();
        });
        // Without the extension the 200 ms timeout would have passed long before "ready".
        assert_eq!(
            wait(&rd, Duration::from_millis(200)).unwrap(),
            Report::Ready
        );
        writer.join().unwrap();
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let reporter = Reporter::new(wr);
        reporter.extend(Duration::from_millis(100));
        assert_eq!(
            wait(&rd, Duration::from_millis(100)).unwrap(),
            Report::TimedOut
        );
        drop(reporter);
    }

    fn handover() -> Handover {
        Handover {
            predecessor: 4242,
            lock: 3,
            report: 4,
            listens: vec![("http".into(), 5), ("admin.v2".into(), 6)],
        }
    }

    /// `upgrade` writes what the new daemon reads (the writer is the control feature's).
    #[cfg(all(feature = "control", target_os = "linux"))]
    #[test]
    fn handovers_round_trip() {
        let text = handover().encode();
        assert_eq!(
            text,
            "v1 pid=4242 lock=3 report=4 listen=http:5 listen=admin.v2:6"
        );
        assert_eq!(Handover::parse(&text), Some(handover()));
    }

    /// The new daemon's side, in every build: another program's `upgrade` may start it.
    #[test]
    fn handovers_are_read_and_nonsense_is_refused() {
        assert_eq!(
            Handover::parse("v1 pid=4242 lock=3 report=4 listen=http:5 listen=admin.v2:6"),
            Some(handover())
        );
        for bad in [
            "",
            "v2 pid=1 lock=3 report=4",
            "v1 pid=1 lock=2 report=4",
            "v1 pid=1 lock=3",
            "v1 pid=x lock=3 report=4",
            "v1 pid=1 lock=3 report=4 listen=http",
            "v1 pid=1 lock=3 report=4 other=1",
        ] {
            assert_eq!(Handover::parse(bad), None, "{bad:?}");
        }
    }
}
