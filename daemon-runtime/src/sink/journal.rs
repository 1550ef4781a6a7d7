//! stdout or stderr on the journal: a stream connection to journald's stdout socket, with the header
//! `systemd-cat` and systemd itself send (systemd's `sd_journal_stream_fd`): the identifier, an empty
//! unit id, the default priority, `level_prefix` on (a line starting `<N>` gets priority N), and no
//! forwarding to syslog, the kernel log or the console (journald's own settings decide those).
//! journald reads each line as an entry with `SYSLOG_IDENTIFIER=` the identifier and `_PID=` the process
//! that connected: the daemon, after its forks.

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::sys::fd::above_stdio;

/// journald's stdout socket.
pub(crate) const SOCKET: &str = "/run/systemd/journal/stdout";

/// The device and inode systemd put in `JOURNAL_STREAM` (`DEV:INO`): the stream stdout or stderr is
/// already connected to, when the service manager connected it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stream {
    dev: u64,
    ino: u64,
}

impl Stream {
    /// `JOURNAL_STREAM`, read before the environment is cleaned.
    pub(crate) fn from_env() -> Option<Stream> {
        let value = std::env::var("JOURNAL_STREAM").ok()?;
        let (dev, ino) = value.split_once(':')?;
        Some(Stream {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
        })
    }

    /// Whether `fd` is this stream, a socket (journald's streams are): it is on the journal already, and
    /// is kept. A variable naming a file is not taken for the journal.
    // `st_dev` and `st_ino` are u64 on Linux, narrower or signed elsewhere.
    #[allow(clippy::useless_conversion)]
    pub(crate) fn is(self, fd: impl AsFd) -> bool {
        nix::sys::stat::fstat(fd).is_ok_and(|stat| {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
                & nix::sys::stat::SFlag::S_IFMT;
            kind == nix::sys::stat::SFlag::S_IFSOCK
                && u64::try_from(stat.st_dev).ok() == Some(self.dev)
                && u64::try_from(stat.st_ino).ok() == Some(self.ino)
        })
    }
}

/// Connects to journald and sends the header: `identifier`, lines at `priority` by default.
pub(crate) fn connect(identifier: &str, priority: u8) -> std::io::Result<OwnedFd> {
    let mut stream = UnixStream::connect(SOCKET)?;
    // journald never writes on it: only our side speaks.
    stream.shutdown(std::net::Shutdown::Read)?;
    stream.write_all(header(identifier, priority).as_bytes())?;
    above_stdio(stream.into()).map_err(std::io::Error::from)
}

/// The header of journald's stdout protocol (journald-stream.c reads it line by line).
fn header(identifier: &str, priority: u8) -> String {
    // A newline in the identifier would shift every field after it.
    let identifier = identifier.replace('\n', " ");
    format!("{identifier}\n\n{priority}\n1\n0\n0\n0\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_as_systemd_cat_sends_it() {
        // identifier, unit id (empty), priority, level_prefix, forward to syslog, kmsg, console.
        assert_eq!(super::header("myapp", 3), "myapp\n\n3\n1\n0\n0\n0\n");
    }
}
