//! The daemon's side of the control actions: a small text record in its lock file, written through the
//! descriptor the daemon locked it with (opened before any privilege drop: the lock file is root's, so
//! no other process of the daemon's user can write it, issue 18.4), and read by `reload`, `reopen-logs`
//! (which watch the file with inotify) and `status`.
//!
//! ```text
//! daemon-runtime control 2
//! pid 4242
//! fd 5
//! subscribed
//! reload 3 ok
//! reopen-on 10
//! reopen 2 failed cannot reopen log file /var/log/app/app.log: Permission denied (os error 13)
//! listen http 7
//! end 5f0c2e91
//! ```
//!
//! `pid` names the daemon and `fd` the descriptor it holds the lock through (a candidate, and where to
//! look first, which the control actions verify, never trust); `subscribed` says the
//! program receives signals as events (so it answers reloads); the reload line is `reload N pending`,
//! `reload N ok` or `reload N failed MESSAGE`, N counting the Reload events delivered; `reopen-on S` says
//! the log files are reopened on signal S, and the reopen line answers the Nth such signal the same way;
//! `listen NAME FD` names a listening socket the daemon hands to its successor on `upgrade` (candidates
//! too: `upgrade` checks each is a listening socket).
//! The last line carries a checksum of the lines above it: the record is rewritten in place (`pwrite` at
//! offset 0, then `ftruncate`), so a reader that catches it half-written sees a bad checksum and waits for
//! the next change. At a clean exit the record is emptied.

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt as _;

use nix::sys::signal::Signal;

use crate::sys::signal::holding;
use std::sync::Mutex;

const HEADER: &str = "daemon-runtime control 2";
/// The longest failure message kept.
const MAX_MESSAGE: usize = 512;

struct State {
    /// A duplicate of the lock file's descriptor (the same open file), and the number of the one the lock
    /// is held through, for the `fd` hint. Closed by `detach`, before the pid file code closes its own:
    /// the lock goes with the last descriptor of the open file.
    file: Option<(File, RawFd)>,
    /// The process that attached it: a child forked since never writes its parent's record.
    owner: u32,
    subscribed: bool,
    seq: u64,
    reload: Answer,
    /// The signal number the log files are reopened on, if any.
    reopen_on: Option<i32>,
    reopen_seq: u64,
    reopen: Answer,
    /// The listening sockets an upgrade hands over, by name.
    listens: Vec<(String, RawFd)>,
}

/// How the latest request of a kind went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    None,
    Pending,
    Ok,
    Failed(String),
}

static STATE: Mutex<State> = Mutex::new(State {
    file: None,
    owner: 0,
    subscribed: false,
    seq: 0,
    reload: Answer::None,
    reopen_on: None,
    reopen_seq: 0,
    reopen: Answer::None,
    listens: Vec::new(),
});

fn with_state(f: impl FnOnce(&mut State)) {
    let mut state = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut state);
    write(&state);
}

/// The lock file is open (and locked) as `file` for the daemon's life, through descriptor `fd`: records
/// go there from now on.
pub(crate) fn attach(file: File, fd: RawFd) {
    with_state(|state| {
        state.file = Some((file, fd));
        state.owner = std::process::id();
    });
}

/// The lock file is about to be closed: stop writing to its descriptor.
pub(crate) fn detach() {
    let mut state = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    state.file = None;
}

/// The program receives Reload events (lifecycle hook `subscribed`).
pub(crate) fn subscribed() {
    with_state(|state| state.subscribed = true);
}

/// A Reload event was handed to the program (lifecycle hook `reload_delivered`).
pub(crate) fn reload_delivered() {
    with_state(|state| {
        state.seq += 1;
        state.reload = Answer::Pending;
    });
}

/// The program said how its reload went (lifecycle hook `reload_done`).
pub(crate) fn reload_done(result: Result<(), &str>) {
    with_state(|state| state.reload = answer(result));
}

/// The log files are reopened on signal `number` from now on.
pub(crate) fn reopen_on(number: i32) {
    with_state(|state| state.reopen_on = Some(number));
}

/// The listening socket `fd` goes to the daemon's successor on `upgrade`, under `name` (checked by the
/// caller: a socket name as systemd's `FDNAME=` takes, without spaces).
pub(crate) fn listen(name: &str, fd: RawFd) {
    with_state(|state| {
        state.listens.retain(|(n, _)| n != name);
        state.listens.push((name.to_string(), fd));
    });
}

/// The reopen asked for by the `seq`th signal is done.
pub(crate) fn reopen_done(seq: u64, result: Result<(), &str>) {
    with_state(|state| {
        state.reopen_seq = seq;
        state.reopen = answer(result);
    });
}

fn answer(result: Result<(), &str>) -> Answer {
    match result {
        Ok(()) => Answer::Ok,
        Err(message) => Answer::Failed(clean(message)),
    }
}

/// One line, printable, bounded.
fn clean(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

fn line(body: &mut String, kind: &str, seq: u64, answer: &Answer) {
    let _ = match answer {
        Answer::None => Ok(()),
        Answer::Pending => writeln!(body, "{kind} {seq} pending"),
        Answer::Ok => writeln!(body, "{kind} {seq} ok"),
        Answer::Failed(message) => writeln!(body, "{kind} {seq} failed {message}"),
    };
}

fn encode(state: &State) -> String {
    let mut body = format!("{HEADER}\npid {}\n", state.owner);
    if let Some((_, fd)) = &state.file {
        let _ = writeln!(body, "fd {fd}");
    }
    if state.subscribed {
        body.push_str("subscribed\n");
    }
    line(&mut body, "reload", state.seq, &state.reload);
    if let Some(number) = state.reopen_on {
        let _ = writeln!(body, "reopen-on {number}");
    }
    line(&mut body, "reopen", state.reopen_seq, &state.reopen);
    for (name, fd) in &state.listens {
        let _ = writeln!(body, "listen {name} {fd}");
    }
    let sum = checksum(body.as_bytes());
    let _ = writeln!(body, "end {sum:08x}");
    body
}

fn write(state: &State) {
    let Some((file, _)) = &state.file else { return };
    // A forked child never writes its parent's record, nor a daemon an upgrade replaced its successor's.
    if state.owner != std::process::id() || super::handover::superseded() {
        return;
    }
    let text = encode(state);
    // One write, and the file cut to what it took: past a small RLIMIT_FSIZE a retry of the rest would
    // fail with EFBIG and raise SIGXFSZ, held back here, so that the limit cuts the record (which a
    // reader then sees torn) instead of killing the daemon. A record that cannot be written only means
    // `reload` will time out: never fail the daemon for it.
    let written = holding(Signal::SIGXFSZ, || file.write_at(text.as_bytes(), 0));
    if let Ok(written) = written {
        let _ = file.set_len(written as u64);
    }
}

/// FNV-1a, 32 bits: enough to tell a torn record from a whole one.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// A whole record, as the control actions read it (on Linux).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg(feature = "control")]
pub(crate) struct Parsed {
    pub(crate) subscribed: bool,
    pub(crate) seq: u64,
    pub(crate) reload: Answer,
    pub(crate) reopen_on: Option<i32>,
    pub(crate) reopen_seq: u64,
    pub(crate) reopen: Answer,
    /// The listening sockets an upgrade hands over: name and descriptor number in the daemon.
    pub(crate) listens: Vec<(String, i32)>,
}

/// Parses a record; `None` for a torn, empty or foreign one.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[cfg(feature = "control")]
pub(crate) fn parse(bytes: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(bytes).ok()?;
    let end = text.find("\nend ")? + 1;
    let (body, tail) = text.split_at(end);
    let sum = tail.strip_prefix("end ")?.get(..8)?;
    if u32::from_str_radix(sum, 16).ok()? != checksum(body.as_bytes()) {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut parsed = Parsed {
        subscribed: false,
        seq: 0,
        reload: Answer::None,
        reopen_on: None,
        reopen_seq: 0,
        reopen: Answer::None,
        listens: Vec::new(),
    };
    let answer = |rest: &str| -> Option<(u64, Answer)> {
        let (seq, state) = rest.split_once(' ')?;
        let answer = match state {
            "pending" => Answer::Pending,
            "ok" => Answer::Ok,
            _ => Answer::Failed(state.strip_prefix("failed ")?.to_string()),
        };
        Some((seq.parse().ok()?, answer))
    };
    for line in lines {
        if line == "subscribed" {
            parsed.subscribed = true;
        } else if let Some(rest) = line.strip_prefix("reload ") {
            (parsed.seq, parsed.reload) = answer(rest)?;
        } else if let Some(rest) = line.strip_prefix("reopen-on ") {
            parsed.reopen_on = Some(rest.parse().ok()?);
        } else if let Some(rest) = line.strip_prefix("reopen ") {
            (parsed.reopen_seq, parsed.reopen) = answer(rest)?;
        } else if let Some(rest) = line.strip_prefix("listen ") {
            let (name, fd) = rest.split_once(' ')?;
            parsed.listens.push((name.to_string(), fd.parse().ok()?));
        }
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            file: None,
            owner: 4242,
            subscribed: true,
            seq: 3,
            reload: Answer::Failed(clean("bad\nconfig: line 3")),
            reopen_on: Some(10),
            reopen_seq: 2,
            reopen: Answer::Ok,
            listens: vec![("http".into(), 7)],
        }
    }

    /// The daemon's side, in every build: the record its control clients read.
    #[test]
    fn records_are_written_with_a_checksum_last() {
        let text = encode(&state());
        let (body, end) = text.trim_end().rsplit_once('\n').expect("lines");
        assert!(
            body.starts_with("daemon-runtime control 2\npid 4242\n"),
            "{text}"
        );
        assert!(body.contains("\nlisten http 7"), "{text}");
        // The reload's failure on one line: the record is line-based.
        assert!(body.contains("bad config: line 3"), "{text}");
        let sum = end.strip_prefix("end ").expect("end line");
        assert!(
            sum.len() == 8 && sum.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        );
    }

    #[cfg(feature = "control")]
    #[test]
    fn records_round_trip_and_torn_ones_are_rejected() {
        let text = encode(&state());
        let parsed = parse(text.as_bytes()).unwrap();
        assert!(parsed.subscribed);
        assert_eq!(parsed.seq, 3);
        assert_eq!(parsed.reload, Answer::Failed("bad config: line 3".into()));
        assert_eq!(
            (parsed.reopen_on, parsed.reopen_seq, &parsed.reopen),
            (Some(10), 2, &Answer::Ok)
        );
        assert_eq!(parsed.listens, [("http".to_string(), 7)]);
        // A longer old record under a shorter new one, before the truncate: still the new one.
        let mut torn = text.clone().into_bytes();
        torn.extend_from_slice(b"reload 2 ok\nend 00000000\n");
        assert_eq!(parse(&torn), Some(parsed));
        // A byte from an older record in the middle: the checksum catches it.
        let mixed = text.replacen("reload 3", "reload 2", 1);
        assert_eq!(parse(mixed.as_bytes()), None);
        assert_eq!(parse(b""), None);
    }
}
