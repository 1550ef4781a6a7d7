//! The lines' format on the wire: sd-daemon(3)'s level prefix (`<3>`) read off a line, and RFC 3164
//! framing as util-linux's `logger` sends it to the local socket: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`.

/// `info`: the severity of a stdout line without a prefix.
pub(crate) const INFO: u8 = 6;
/// `err`: the severity of a stderr line without a prefix (a panic's message lands there).
pub(crate) const ERR: u8 = 3;
/// `warning`: the severity of the relay's own notices (lines dropped).
pub(crate) const WARNING: u8 = 4;

/// The longest datagram sent, header included: rsyslog's default `maxMessageSize` (8 KiB, of which it
/// keeps 8096 bytes); a longer line goes in pieces, each with the header.
pub(crate) const MAX_DATAGRAM: usize = 8096;

/// The severity a line's sd-daemon(3) prefix gives (`<0>` emerg ... `<7>` debug) and the line without
/// it; `None` and the whole line when it has none.
pub(crate) fn level(line: &[u8]) -> (Option<u8>, &[u8]) {
    match line {
        [b'<', digit @ b'0'..=b'7', b'>', rest @ ..] => (Some(digit - b'0'), rest),
        _ => (None, line),
    }
}

/// Appends one datagram to `out`: priority `facility * 8 + severity`, the local time `stamp` (15 bytes,
/// `Dec  6 23:04:48`), the tag and pid, the message (a trailing `\r` removed, as a line from a terminal
/// program may carry).
pub(crate) fn frame(
    out: &mut Vec<u8>,
    facility: u8,
    severity: u8,
    stamp: &[u8],
    tag: &str,
    pid: u32,
    message: &[u8],
) {
    use std::io::Write as _;
    let message = message.strip_suffix(b"\r").unwrap_or(message);
    let priority = u32::from(facility) * 8 + u32::from(severity & 7);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "<{priority}>");
    out.extend_from_slice(stamp);
    let _ = write!(out, " {tag}[{pid}]: ");
    out.extend_from_slice(message);
}

/// A line of the relay's own, at `warning`: how many lines were lost while syslog was unreachable.
pub(crate) fn dropped_notice(dropped: u64, socket: &str) -> String {
    format!("{dropped} lines were dropped while syslog at {socket} was unreachable or too slow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_prefix_sets_the_severity() {
        assert_eq!(level(b"<3>disk full"), (Some(3), &b"disk full"[..]));
        assert_eq!(level(b"<7>"), (Some(7), &b""[..]));
        assert_eq!(level(b"<8>not a level"), (None, &b"<8>not a level"[..]));
        assert_eq!(level(b"<12>x"), (None, &b"<12>x"[..]));
        assert_eq!(level(b"plain"), (None, &b"plain"[..]));
    }

    #[test]
    fn frames_as_logger_does() {
        let mut out = Vec::new();
        frame(
            &mut out,
            3,
            ERR,
            b"Dec  6 23:04:48",
            "myapp",
            4242,
            b"hello world\r",
        );
        // What `logger -u SOCKET -t myapp --id=4242 -p daemon.err 'hello world'` sends.
        assert_eq!(out, b"<27>Dec  6 23:04:48 myapp[4242]: hello world");
    }
}
