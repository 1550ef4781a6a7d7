//! The syslog relay's loop, in its own process (sys/relay.rs starts it): reads the daemon's lines from
//! the pipes on its fds 1 and 2, frames each (frame.rs) and sends it to the syslog socket, without ever
//! blocking the writers: the pipes are always read, and what syslog cannot take yet waits in a bounded
//! queue. When syslog goes away (a restart of rsyslogd or syslog-ng), the socket is connected again, by
//! its path, with a growing pause between tries; lines that did not fit in the queue meanwhile are
//! counted, the oldest first, and the count is sent as a notice once syslog is back. The relay ends when
//! every writer has closed the pipes (the daemon, its forked workers and its children are gone) and its
//! queue is sent, or after a short grace if syslog is still away.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::frame::{self, MAX_DATAGRAM, WARNING};
use crate::sys::relay::local_stamp;

/// The most lines, and bytes, waiting for syslog: past either, the oldest are dropped (and counted).
const MAX_QUEUED_LINES: usize = 16 * 1024;
const MAX_QUEUED_BYTES: usize = 4 << 20;
/// The pauses between tries to connect again.
const FIRST_RETRY: Duration = Duration::from_millis(20);
const LAST_RETRY: Duration = Duration::from_millis(500);
/// How long the relay tries to deliver its queue after the last writer is gone (a syslog daemon that is
/// restarting), before it ends with what it holds.
const GRACE: Duration = Duration::from_secs(5);

/// One of the daemon's streams: the pipe's read end, its facility and the severity of a line without a
/// prefix.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) pipe: OwnedFd,
    facility: u8,
    severity: u8,
    partial: Vec<u8>,
    /// The severity of the line `partial` continues, once its first piece went (its prefix, if any, was
    /// read off that piece; the rest of the line is text, whatever it starts with).
    continued: Option<u8>,
}

impl Input {
    pub(crate) fn new(pipe: OwnedFd, facility: u8, severity: u8) -> Input {
        Input {
            pipe,
            facility,
            severity,
            partial: Vec::new(),
            continued: None,
        }
    }
}

/// Who the lines are from, and where they go.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) socket_path: &'static str,
    pub(crate) tag: String,
    pub(crate) pid: u32,
}

struct State<'a> {
    relay: &'a Relay,
    socket: Option<UnixDatagram>,
    /// The facility of the relay's own notices: the first input's.
    facility: u8,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    dropped: u64,
    retry_at: Instant,
    pause: Duration,
    /// The timestamp of the current second, and that second: `localtime_r` once a second, not a line.
    stamp: ([u8; 15], u64),
}

impl State<'_> {
    fn stamp(&mut self) -> [u8; 15] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now != self.stamp.1 {
            self.stamp = (local_stamp(), now);
        }
        self.stamp.0
    }
}

/// Relays until the inputs are closed (see the module's documentation).
pub(crate) fn run(relay: &Relay, mut inputs: Vec<Input>, socket: UnixDatagram) {
    let _ = socket.set_nonblocking(true);
    let mut state = State {
        relay,
        socket: Some(socket),
        facility: inputs.first().map_or(3, |input| input.facility),
        queue: VecDeque::new(),
        queued_bytes: 0,
        dropped: 0,
        retry_at: Instant::now(),
        pause: FIRST_RETRY,
        stamp: (local_stamp(), 0),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut ended_at = None;
    loop {
        if inputs.is_empty() {
            let ended = *ended_at.get_or_insert_with(Instant::now);
            if state.queue.is_empty() || ended.elapsed() >= GRACE {
                return;
            }
        }
        let waiting = !state.queue.is_empty();
        let timeout = match (&state.socket, waiting) {
            (None, true) => Some(state.retry_at.saturating_duration_since(Instant::now())),
            _ if inputs.is_empty() => {
                Some(GRACE.saturating_sub(ended_at.map_or(GRACE, |e| e.elapsed())))
            }
            _ => None,
        };
        let mut fds: Vec<PollFd> = inputs
            .iter()
            .map(|input| PollFd::new(input.pipe.as_fd(), PollFlags::POLLIN))
            .collect();
        if let Some(socket) = state.socket.as_ref().filter(|_| waiting) {
            fds.push(PollFd::new(socket.as_fd(), PollFlags::POLLOUT));
        }
        // Rounded up, so that a pause is never cut short into a busy loop.
        let timeout = timeout.map_or(PollTimeout::NONE, |left| {
            PollTimeout::from(u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX))
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready: Vec<bool> = fds
            .iter()
            .take(inputs.len())
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut index = 0;
        inputs.retain_mut(|input| {
            let keep = !ready[index] || state.read(input, &mut buffer);
            index += 1;
            keep
        });
        state.flush();
    }
}

impl State<'_> {
    /// Reads what `input` has; `false` once it is closed (its unfinished line is sent as it is).
    fn read(&mut self, input: &mut Input, buffer: &mut [u8]) -> bool {
        let count = match nix::unistd::read(&input.pipe, buffer) {
            Ok(count) => count,
            Err(Errno::EINTR | Errno::EAGAIN) => return true,
            Err(_) => 0,
        };
        if count == 0 {
            let rest = std::mem::take(&mut input.partial);
            self.line_end(input, &rest);
            return false;
        }
        let mut data = &buffer[..count];
        while let Some(end) = data.iter().position(|b| *b == b'\n') {
            if input.partial.is_empty() {
                self.line_end(input, &data[..end]);
            } else {
                input.partial.extend_from_slice(&data[..end]);
                let line = std::mem::take(&mut input.partial);
                self.line_end(input, &line);
            }
            data = &data[end + 1..];
        }
        input.partial.extend_from_slice(data);
        // A line whose end has not come yet goes in pieces once it is a datagram long, at the level its
        // first piece set.
        if input.partial.len() >= MAX_DATAGRAM {
            let piece = std::mem::take(&mut input.partial);
            let (severity, message) = if let Some(severity) = input.continued {
                (severity, &piece[..])
            } else {
                let (level, message) = frame::level(&piece);
                (level.unwrap_or(input.severity), message)
            };
            input.continued = Some(severity);
            self.push(message, input.facility, severity);
        }
        true
    }

    /// The end of a line: queued at its own level, or at the level of its first pieces.
    fn line_end(&mut self, input: &mut Input, line: &[u8]) {
        if let Some(severity) = input.continued.take() {
            self.push(line, input.facility, severity);
        } else {
            let (level, message) = frame::level(line);
            self.push(message, input.facility, level.unwrap_or(input.severity));
        }
    }

    /// Frames a message at `severity` and queues it, in pieces of at most a datagram each; the oldest
    /// lines go when the queue is full.
    fn push(&mut self, message: &[u8], facility: u8, severity: u8) {
        if message.is_empty() {
            return;
        }
        let stamp = self.stamp();
        let mut header = Vec::with_capacity(64);
        frame::frame(
            &mut header,
            facility,
            severity,
            &stamp,
            &self.relay.tag,
            self.relay.pid,
            b"",
        );
        // Room for text in a datagram (a program name of hundreds of bytes still leaves some).
        let room = MAX_DATAGRAM.saturating_sub(header.len()).max(512);
        for piece in message.chunks(room) {
            let mut datagram = Vec::with_capacity(header.len() + piece.len());
            datagram.extend_from_slice(&header);
            datagram.extend_from_slice(piece.strip_suffix(b"\r").unwrap_or(piece));
            self.queued_bytes += datagram.len();
            self.queue.push_back(datagram);
        }
        while self.queue.len() > MAX_QUEUED_LINES || self.queued_bytes > MAX_QUEUED_BYTES {
            let Some(oldest) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= oldest.len();
            self.dropped += 1;
        }
    }

    /// Sends what syslog takes now; connects again when the socket is gone and its pause is over.
    fn flush(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        loop {
            if self.socket.is_none() && !self.reconnect() {
                return;
            }
            let mut gone_away = false;
            while let (Some(datagram), Some(socket)) = (self.queue.front(), &self.socket) {
                match socket.send(datagram) {
                    Ok(_) => {}
                    Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                    Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => return,
                    Err(error) if gone(&error) => {
                        gone_away = true;
                        break;
                    }
                    // Too large, or refused for itself: that line is lost, the others go on.
                    Err(_) => self.dropped += 1,
                }
                let sent = self.queue.pop_front().map_or(0, |d| d.len());
                self.queued_bytes -= sent;
                // Syslog takes lines again after some were lost to it (too slow, or away): their
                // count goes next.
                if self.dropped > 0 {
                    self.queue_notice();
                }
            }
            if !gone_away {
                return;
            }
            // The reader went away (syslog restarted): connect again at once, then with pauses.
            self.socket = None;
            self.retry_at = Instant::now();
        }
    }

    /// Connects to the syslog socket's path again, if the pause is over; puts the count of lines lost
    /// meanwhile first in the queue.
    fn reconnect(&mut self) -> bool {
        let now = Instant::now();
        if now < self.retry_at {
            return false;
        }
        let connected = UnixDatagram::unbound().and_then(|socket| {
            socket.connect(Path::new(self.relay.socket_path))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        });
        let Ok(socket) = connected else {
            self.retry_at = now + self.pause;
            self.pause = (self.pause * 2).min(LAST_RETRY);
            return false;
        };
        self.socket = Some(socket);
        self.pause = FIRST_RETRY;
        if self.dropped > 0 {
            self.queue_notice();
        }
        true
    }

    /// Puts the count of lines lost (to an unreachable or a slow syslog) first in the queue.
    fn queue_notice(&mut self) {
        let notice = frame::dropped_notice(self.dropped, self.relay.socket_path);
        self.dropped = 0;
        let mut datagram = Vec::new();
        let stamp = self.stamp();
        frame::frame(
            &mut datagram,
            self.facility,
            WARNING,
            &stamp,
            &self.relay.tag,
            self.relay.pid,
            notice.as_bytes(),
        );
        self.queued_bytes += datagram.len();
        self.queue.push_front(datagram);
    }
}

/// The error says the socket's reader is gone, not that it is busy.
fn gone(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ECONNRESET | libc::EPIPE | libc::ENOENT)
    )
}
