//! stdout and stderr on the journal or syslog (`stderr = "journal"`, `"syslog:local0"`), connected
//! before chroot and the user switch, for the daemon's whole life.
//!
//! - The journal ([`journal`]): fd 1 or 2 becomes a stream connection to journald, as systemd gives its
//!   services; nothing runs in between, and under systemd with stdio already on the journal
//!   (`JOURNAL_STREAM`) nothing changes.
//! - Syslog ([`relay`]): syslog takes datagrams, one per line, which a write to fd 2 (a panic, a child
//!   process) does not make; so fd 1 or 2 becomes a pipe, read by a relay process that frames each line
//!   ([`frame`]) and sends it. A process rather than a thread: a thread would die in a forked worker (whose
//!   lines would then block once the pipe is full) and with the daemon (losing its last lines, the panic
//!   message among them), and would break the one-thread rule of `no_new_privs` and `keep_caps`. The
//!   relay is the daemon's grandchild (never its child: a body that reaps its children never meets it),
//!   reads the pipe until every writer is gone, then ends: it never holds the daemon up. It runs as the
//!   daemon's user, not dumpable (so that the daemon, even compromised, cannot ptrace it to leave its
//!   chroot), outside the chroot (it connects to `/dev/log` again by path after a syslog restart), and
//!   holds only the pipes and the socket.
//!
//! [`output`] holds the public types.

pub(crate) mod frame;
pub(crate) mod journal;
pub(crate) mod output;
pub(crate) mod relay;

use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

use crate::error::{Error, Step, program};
use crate::identity::Identity;
use crate::sys::fd::above_stdio;
use output::Output;

/// The local syslog socket.
#[cfg(target_os = "macos")]
pub(crate) const SYSLOG_SOCKET: &str = "/var/run/syslog";
#[cfg(target_os = "freebsd")]
pub(crate) const SYSLOG_SOCKET: &str = "/var/run/log";
#[cfg(not(any(target_os = "macos", target_os = "freebsd")))]
pub(crate) const SYSLOG_SOCKET: &str = "/dev/log";

/// What goes on fds 1 and 2 once the start is far enough: a journal stream, or a pipe to the relay.
#[derive(Debug, Default)]
pub(crate) struct Connected {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

/// [`connect`], as the builder keeps it with a sink key.
pub(crate) type Connect = fn(
    Option<&Output>,
    Option<&Output>,
    Option<journal::Stream>,
    &Identity,
) -> Result<Connected, Error>;

/// [`connect`], for the builder.
pub(crate) const CONNECT: Connect = connect;

/// Connects the streams configured to a sink (the others are left to the log files and /dev/null):
/// fails, naming the stream and the socket, when a socket is missing or refuses the connection, or the
/// relay cannot start. `journal_stream` is `JOURNAL_STREAM` as the process started with it.
fn connect(
    stdout: Option<&Output>,
    stderr: Option<&Output>,
    journal_stream: Option<journal::Stream>,
    identity: &Identity,
) -> Result<Connected, Error> {
    let mut connected = Connected::default();
    let is_sink = |output: Option<&Output>| output.is_some_and(|o| o.file().is_none());
    if !is_sink(stdout) && !is_sink(stderr) {
        // The usual start: no name to look up, nothing to connect.
        return Ok(connected);
    }
    let tag = program();
    let mut syslog = Vec::new();
    for (name, output, severity) in [
        ("stdout", stdout, frame::INFO),
        ("stderr", stderr, frame::ERR),
    ] {
        let fd = match output {
            Some(Output::Journal) => {
                let current = match name {
                    "stdout" => std::io::stdout().as_fd().try_clone_to_owned(),
                    _ => std::io::stderr().as_fd().try_clone_to_owned(),
                };
                match current {
                    // systemd's own stream (`JOURNAL_STREAM`): kept, and put back after the
                    // redirection to /dev/null of a forking start (`Type=forking`).
                    Ok(current) if journal_stream.is_some_and(|stream| stream.is(&current)) => {
                        current
                    }
                    _ => journal::connect(&tag, severity)
                        .map_err(|error| refused(name, "the journal", journal::SOCKET, &error))?,
                }
            }
            Some(Output::Syslog(facility)) => {
                let (read_end, write_end) = crate::sys::fd::pipe().map_err(|errno| {
                    Error::os(Step::Sink, subject(name, "syslog", SYSLOG_SOCKET), errno)
                })?;
                syslog.push((name, relay::Input::new(read_end, facility.code(), severity)));
                write_end
            }
            _ => continue,
        };
        match name {
            "stdout" => connected.stdout = Some(fd),
            _ => connected.stderr = Some(fd),
        }
    }
    if let Some((name, _)) = syslog.first() {
        let name = *name;
        let socket = UnixDatagram::unbound()
            .and_then(|socket| {
                socket.connect(SYSLOG_SOCKET)?;
                Ok(socket)
            })
            .map_err(|error| refused(name, "syslog", SYSLOG_SOCKET, &error))?;
        let inputs = syslog.into_iter().map(|(_, input)| input).collect();
        start_relay(name, inputs, socket, identity)?;
    }
    Ok(connected)
}

impl Connected {
    /// Puts the sinks on fds 1 and 2 (`dup2`, atomic; the numbers are never closed first).
    pub(crate) fn install(self) -> Result<(), Error> {
        let fail = |errno| Error::os(Step::Stdio, None, errno);
        if let Some(fd) = &self.stdout {
            nix::unistd::dup2_stdout(fd).map_err(fail)?;
        }
        if let Some(fd) = &self.stderr {
            nix::unistd::dup2_stderr(fd).map_err(fail)?;
        }
        Ok(())
    }
}

/// `stderr to the journal at /run/systemd/journal/stdout`: what `cannot connect` is about.
fn subject(name: &str, sink: &str, socket: &str) -> String {
    format!("{name} to {sink} at {socket}")
}

fn refused(name: &str, sink: &str, socket: &str, error: &std::io::Error) -> Error {
    Error::new(
        Step::Sink,
        Some(subject(name, sink, socket)),
        Some(error.raw_os_error().unwrap_or(libc::EIO)),
    )
}

/// Starts the relay (see the module's documentation) and waits for its word that it dropped its
/// privileges.
fn start_relay(
    name: &str,
    inputs: Vec<relay::Input>,
    socket: UnixDatagram,
    identity: &Identity,
) -> Result<(), Error> {
    let fail = |errno| Error::os(Step::Sink, subject(name, "syslog", SYSLOG_SOCKET), errno);
    let (report_read, report_write) = crate::sys::fd::pipe().map_err(fail)?;
    let socket: OwnedFd = above_stdio(socket.into()).map_err(fail)?;
    let mut keep: Vec<i32> = inputs.iter().map(|input| input.pipe.as_raw_fd()).collect();
    keep.extend([socket.as_raw_fd(), report_write.as_raw_fd()]);
    let status = crate::sys::proc_status::ProcStatus::read();
    let alone = crate::threads::check(status.as_ref(), None)?;
    let relay = relay::Relay {
        socket_path: SYSLOG_SOCKET,
        tag: program(),
        pid: std::process::id(),
    };
    crate::sys::relay::spawn(&alone, &keep, move || {
        let mut report = std::fs::File::from(report_write);
        match drop_privileges(identity) {
            Ok(()) => {
                let _ = std::io::Write::write_all(&mut report, b"+");
            }
            Err(error) => {
                let _ = std::io::Write::write_all(&mut report, error.to_string().as_bytes());
                return;
            }
        }
        drop(report);
        relay::run(&relay, inputs, UnixDatagram::from(socket));
    })
    .map_err(|errno| Error::os(Step::Fork, None, errno))?;
    let mut answer = String::new();
    // The relay's end was closed here with the closure: end of file once the relay wrote or ended.
    let _ = std::fs::File::from(report_read).read_to_string(&mut answer);
    match answer.as_str() {
        "+" => Ok(()),
        "" => Err(Error::new(
            Step::Sink,
            Some(subject(name, "syslog", SYSLOG_SOCKET)),
            None,
        )
        .with_detail("the relay process ended before it started")),
        why => Err(Error::new(
            Step::Sink,
            Some(subject(name, "syslog", SYSLOG_SOCKET)),
            None,
        )
        .with_detail(format!(
            "the relay process cannot drop its privileges: {why}"
        ))),
    }
}

/// In the relay: the daemon's user and groups (no capability kept), not dumpable, `no_new_privs`, and
/// out of any directory a mount could need.
fn drop_privileges(identity: &Identity) -> Result<(), Error> {
    nix::unistd::chdir("/")
        .map_err(|errno| Error::at(Step::Chdir, std::path::Path::new("/"), errno))?;
    identity.set_groups()?;
    identity.switch()?;
    crate::hardening::relay_hardening()
}
