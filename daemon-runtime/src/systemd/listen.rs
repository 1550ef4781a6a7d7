//! Socket activation (`sd_listen_fds(3)`): the listening sockets systemd opened for the service, passed as
//! fds 3, 4, ... with `$LISTEN_FDS`, `$LISTEN_PID` and `$LISTEN_FDNAMES`.
//!
//! [`Daemon::start`](crate::Daemon::start) takes them over in the foreground (`Type=notify` or
//! `Type=simple` units): only when `$LISTEN_PID` is this process, each fd must be open and inherited (an fd
//! this program opened itself is never adopted), each is made close-on-exec so that programs the daemon
//! spawns do not inherit it, and the three variables are removed from the environment. In fork mode
//! nothing is taken: the variables are removed, the fds closed with the other inherited ones, and the
//! program binds its sockets as usual.
//!
//! ```no_run
//! use daemon_runtime::{daemon, listen};
//!
//! #[daemon(readiness = "manual")]
//! fn main() -> std::io::Result<()> {
//!     // From echo.socket's `FileDescriptorName=echo`, else bind it ourselves.
//!     let listener = match listen::tcp_listener("echo")? {
//!         Some(listener) => listener,
//!         None => std::net::TcpListener::bind("127.0.0.1:7007")?,
//!     };
//!     daemon_runtime::ready()?;
//!     for stream in listener.incoming() {
//!         drop(stream?);
//!     }
//!     Ok(())
//! }
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use super::notify;
use crate::pidfile::record;
use crate::sys::env::SingleThread;
use crate::sys::fd::{Kind, adopt_inherited};
use crate::sys::io::{int_option, socket_domain};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;
/// More fds than any unit passes; a larger `LISTEN_FDS` is refused as nonsense.
const MAX_FDS: usize = 4096;

const LISTEN_PID: &str = "LISTEN_PID";
const LISTEN_FDS: &str = "LISTEN_FDS";
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// The fds taken over at start and not yet handed to the program.
static TAKEN: Mutex<Vec<ListenFd>> = Mutex::new(Vec::new());

/// One socket passed by the service manager, with the name its unit gave it.
#[derive(Debug)]
pub struct ListenFd {
    name: String,
    fd: OwnedFd,
}

impl ListenFd {
    /// The name from `FileDescriptorName=` in the `.socket` unit (systemd's default is the socket unit's
    /// name, e.g. `echo.socket`; `unknown` when the manager passed no names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fd, still owned by this value.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// The owned fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Takes over the fds systemd passed, when `$LISTEN_PID` is this process; removes the variables in any
/// case where the process runs one thread (`alone`). Returns the fds to keep open. Called by
/// `Daemon::start` in the foreground.
pub(crate) fn take_env(alone: Option<&SingleThread>) -> Vec<RawFd> {
    let passed = passed_fds(
        std::env::var(LISTEN_PID).ok().as_deref(),
        std::env::var(LISTEN_FDS).ok().as_deref(),
        std::env::var(LISTEN_FDNAMES).ok().as_deref(),
        std::process::id(),
    );
    if let Some(alone) = alone {
        discard_env(alone);
    }
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut kept = Vec::new();
    for (fd, name) in passed {
        if let Some(fd) = adopt(fd, &name) {
            kept.push(fd.as_raw_fd());
            record::listen(&name, fd.as_raw_fd());
            taken.push(ListenFd { name, fd });
        }
    }
    kept
}

/// A listening socket the daemon this one upgrades handed over (adopted and checked by the launch):
/// handed out by [`tcp_listener`] and the others as a socket systemd passed, and handed over again on the
/// next upgrade.
pub(crate) fn handed_over(name: String, fd: OwnedFd) {
    record::listen(&name, fd.as_raw_fd());
    TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(ListenFd { name, fd });
}

/// Registers a listening socket the program bound itself, under `name`, so that `myapp upgrade` hands it
/// to the new daemon (which gets it back from [`tcp_listener`]`(name)` or [`unix_listener`], as if systemd
/// had passed it), and, under systemd, so that it is kept in the service's file descriptor store
/// (`FDSTORE=1`, `FDNAME=name`: with `FileDescriptorStoreMax=` in the unit, a `systemctl restart` passes it
/// back). Sockets systemd passed, or an upgrade handed over, are registered already. Call it once per
/// socket, after binding; the socket must stay open (the runtime keeps its number, not the socket).
///
/// ```no_run
/// use daemon_runtime::listen;
///
/// let listener = match listen::tcp_listener("http")? {
///     Some(listener) => listener, // handed over by an upgrade, or passed by systemd
///     None => {
///         let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
///         listen::share("http", &listener)?;
///         listener
///     }
/// };
/// # drop(listener);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` for a name that is empty, longer than 255 bytes, or has other characters than ASCII
/// letters, digits, `_`, `-` and `.`, and for a socket that is not listening (the message says what it
/// is); the OS error of inspecting it; under systemd, a failure to send it to the file descriptor store.
pub fn share(name: &str, socket: &impl AsFd) -> io::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot share a socket as {name:?}: a name is 1 to 255 ASCII letters, digits, `_`, `-` or `.`"
            ),
        ));
    }
    let fd = socket.as_fd().as_raw_fd();
    if int_option(fd, libc::SO_ACCEPTCONN)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot share fd {fd} as {name:?}: it is not a listening socket"),
        ));
    }
    record::listen(name, fd);
    notify::store_fd(name, socket.as_fd()).map_err(io::Error::from)
}

/// Removes the variables: they describe the process systemd started, not any child of it.
pub(crate) fn discard_env(alone: &SingleThread) {
    for name in [LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES] {
        alone.remove_var(name);
    }
}

/// The fds and names the variables describe, when `LISTEN_PID` is `own_pid`; none otherwise.
fn passed_fds(
    pid: Option<&str>,
    count: Option<&str>,
    names: Option<&str>,
    own_pid: u32,
) -> Vec<(RawFd, String)> {
    if pid.and_then(|p| p.parse::<u32>().ok()) != Some(own_pid) {
        return Vec::new();
    }
    let Some(count) = count.and_then(|n| n.parse::<usize>().ok()) else {
        return Vec::new();
    };
    if count > MAX_FDS {
        return Vec::new();
    }
    let mut names = names
        .map(|n| n.split(':').collect::<Vec<_>>())
        .unwrap_or_default();
    names.resize(count, "unknown");
    (FIRST_FD..)
        .zip(names)
        .map(|(fd, name)| (fd, name.to_string()))
        .collect()
}

/// Owns `fd` if it is open, was inherited (not close-on-exec: systemd clears the flag, while Rust opens
/// every fd close-on-exec, so an fd the program opened itself is never taken) and is what systemd passes:
/// a socket or a FIFO (`ListenStream=`, `ListenFIFO=`), or another kind of file only under a name of its
/// own (`OpenFile=`, the fd store), never under the default `unknown`. So a `LISTEN_PID` naming the
/// process cannot have it adopt, and keep after the user switch, any file its launcher had open (issue
/// 18.6: `/etc/passwd` on fd 3 was). Makes it close-on-exec. What is not adopted is closed with the other
/// inherited fds.
fn adopt(fd: RawFd, name: &str) -> Option<OwnedFd> {
    let named = !name.is_empty() && name != "unknown";
    adopt_inherited(fd, |kind| kind == Kind::SocketOrFifo || named)
}

/// Every socket systemd passed that the program has not taken yet, in order (fd 3 first). The runtime
/// takes them over in [`Daemon::start`](crate::Daemon::start) (foreground only: `Type=notify` or
/// `Type=simple`); without it, or in fork mode, or when `$LISTEN_PID` named another process, the list is
/// empty. Each fd is handed out once.
///
/// ```no_run
/// for socket in daemon_runtime::listen::listen_fds() {
///     println!("{}: {:?}", socket.name(), socket.fd());
/// }
/// ```
pub fn listen_fds() -> Vec<ListenFd> {
    std::mem::take(
        &mut *TAKEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Takes the first passed socket named `name`.
fn take(name: &str) -> Option<ListenFd> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let index = taken.iter().position(|s| s.name == name)?;
    Some(taken.remove(index))
}

/// The listening TCP socket systemd passed under `name` (`FileDescriptorName=` in the `.socket` unit), or
/// `None` when none was passed, so that the program can bind one itself. A socket of that name that is
/// not a listening TCP socket (a UDP or Unix socket, a non-listening one, not a socket) is an error saying
/// what it is; the fd is then closed.
///
/// # Errors
///
/// `InvalidInput` when the socket named `name` is not a listening TCP socket (the message says what it
/// is), or the OS error of inspecting it.
///
/// ```no_run
/// let listener = match daemon_runtime::listen::tcp_listener("http")? {
///     Some(listener) => listener,
///     None => std::net::TcpListener::bind("[::]:8080")?,
/// };
/// # drop(listener);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn tcp_listener(name: &str) -> io::Result<Option<std::net::TcpListener>> {
    let Some(socket) = take(name) else {
        return Ok(None);
    };
    check(
        &socket,
        &[libc::AF_INET, libc::AF_INET6],
        "a listening TCP socket",
    )?;
    Ok(Some(std::net::TcpListener::from(socket.fd)))
}

/// The listening Unix stream socket systemd passed under `name`, or `None` when none was passed. A
/// socket of that name of another kind is an error saying what it is; the fd is then closed.
///
/// # Errors
///
/// `InvalidInput` when the socket named `name` is not a listening Unix stream socket (the message says
/// what it is), or the OS error of inspecting it.
///
/// ```no_run
/// let listener = match daemon_runtime::listen::unix_listener("control")? {
///     Some(listener) => listener,
///     None => std::os::unix::net::UnixListener::bind("/run/app/control.sock")?,
/// };
/// # drop(listener);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unix_listener(name: &str) -> io::Result<Option<std::os::unix::net::UnixListener>> {
    let Some(socket) = take(name) else {
        return Ok(None);
    };
    check(&socket, &[libc::AF_UNIX], "a listening Unix stream socket")?;
    Ok(Some(std::os::unix::net::UnixListener::from(socket.fd)))
}

/// Checks that `socket` is a listening stream socket of one of `domains`; the error says what it is.
fn check(socket: &ListenFd, domains: &[libc::c_int], wanted: &str) -> io::Result<()> {
    let fd = socket.fd.as_raw_fd();
    let wrong = |what: String| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket systemd passed as {:?} (fd {fd}) is {what}, not {wanted}",
                socket.name
            ),
        ))
    };
    let kind = match int_option(fd, libc::SO_TYPE) {
        Ok(kind) => kind,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return wrong("not a socket".into()),
        Err(e) => return Err(e),
    };
    let domain = socket_domain(fd)?;
    let domain_name = match domain {
        libc::AF_INET => "an IPv4",
        libc::AF_INET6 => "an IPv6",
        libc::AF_UNIX => "a Unix",
        _ => "a",
    };
    let kind_name = match kind {
        libc::SOCK_STREAM if domain == libc::AF_UNIX => "stream",
        libc::SOCK_STREAM => "TCP",
        libc::SOCK_DGRAM if domain == libc::AF_UNIX => "datagram",
        libc::SOCK_DGRAM => "UDP",
        libc::SOCK_SEQPACKET => "seqpacket",
        libc::SOCK_RAW => "raw",
        _ => "other",
    };
    if kind != libc::SOCK_STREAM || !domains.contains(&domain) {
        return wrong(format!("{domain_name} {kind_name} socket"));
    }
    if int_option(fd, libc::SO_ACCEPTCONN)? == 0 {
        return wrong(format!(
            "{domain_name} {kind_name} socket that is not listening"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_pid_gets_fds_with_names() {
        assert_eq!(
            passed_fds(Some("7"), Some("2"), Some("http:https"), 7),
            [(3, "http".to_string()), (4, "https".to_string())]
        );
        assert_eq!(
            passed_fds(Some("7"), Some("2"), None, 7),
            [(3, "unknown".to_string()), (4, "unknown".to_string())]
        );
        assert_eq!(
            passed_fds(Some("7"), Some("1"), Some("a:b:c"), 7),
            [(3, "a".to_string())]
        );
        for (pid, count) in [
            (Some("8"), Some("1")),
            (None, Some("1")),
            (Some("7"), None),
            (Some("7"), Some("-1")),
            (Some("7"), Some("99999")),
            (Some(" 7"), Some("1")),
        ] {
            assert!(
                passed_fds(pid, count, None, 7).is_empty(),
                "{pid:?} {count:?}"
            );
        }
    }

    #[test]
    fn sockets_are_checked_for_what_they_are() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let unconnected = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
        let as_listen = |fd: OwnedFd| ListenFd {
            name: "http".into(),
            fd,
        };
        let tcp = as_listen(tcp.into());
        assert!(check(&tcp, &[libc::AF_INET, libc::AF_INET6], "TCP").is_ok());
        let message = |socket: OwnedFd, domains: &[libc::c_int]| {
            check(&as_listen(socket), domains, "wanted")
                .unwrap_err()
                .to_string()
        };
        assert!(
            message(udp.into(), &[libc::AF_INET]).contains("is an IPv4 UDP socket, not wanted")
        );
        assert!(message(file.into(), &[libc::AF_INET]).contains("is not a socket"));
        assert!(message(unconnected.into(), &[libc::AF_INET]).contains("that is not listening"));
        assert!(message(tcp.into_fd(), &[libc::AF_UNIX]).contains("is an IPv4 TCP socket"));
    }

    #[test]
    fn an_fd_the_program_opened_is_never_adopted() {
        let file = std::fs::File::open("/dev/null").unwrap(); // close-on-exec, as Rust opens it
        assert!(adopt(file.as_raw_fd(), "http").is_none());
        assert!(adopt(100_000, "http").is_none());
    }
}
