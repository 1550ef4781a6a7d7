//! systemd's notify protocol (`sd_notify(3)`): state lines such as `READY=1` sent as one datagram to the
//! socket named by `$NOTIFY_SOCKET`.
//!
//! Every function here is a no-op returning `Ok(())` when the service manager gave no notify socket, so a
//! program can call them unconditionally: under systemd they report, elsewhere they cost nothing.
//!
//! The runtime opens the socket once, during [`Daemon::start`](crate::Daemon::start) (before any chroot
//! and before privileges are dropped: the socket's path need not exist inside the jail, nor be writable
//! by the daemon's user), connects it, and sends on that connection for the daemon's whole life. It then
//! removes `NOTIFY_SOCKET` from the environment, so that programs the daemon spawns do not report on its
//! behalf. Programs that never call `start` get the socket opened on first use, and the variable left
//! alone.
//!
//! ```no_run
//! use std::time::Duration;
//! use daemon_runtime::notify;
//!
//! notify::set_status("loading 12000 records")?;
//! notify::extend_timeout(Duration::from_secs(30))?; // loading takes longer than TimeoutStartSec
//! notify::set_status("serving")?;
//! notify::raw(&["NOTIFYACCESS=main"])?; // anything else sd_notify(3) defines
//! # Ok::<(), daemon_runtime::Error>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::error::{Error, Step};
use crate::sys::env::SingleThread;

/// The variable systemd sets for `Type=notify` services (and others with `NotifyAccess=`).
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The longest socket path `sockaddr_un` holds, without its terminating NUL (`sun_path` is 108 bytes on
/// Linux).
const MAX_PATH: usize = 107;

const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// One assignment of the protocol: every line the runtime sends is one of these, so the wire strings live
/// here only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// `READY=1`: started, or done reloading.
    Ready,
    /// `RELOADING=1`: a reload starts (with [`Message::MonotonicUsec`]).
    Reloading,
    /// `STOPPING=1`.
    Stopping,
    /// `STATUS=`: free text, made one line.
    Status(&'a str),
    /// `ERRNO=`: why the service failed.
    Errno(i32),
    /// `MAINPID=`: the process systemd should watch (a forked daemon).
    MainPid(u32),
    /// `MONOTONIC_USEC=`: `CLOCK_MONOTONIC` when the reload started.
    MonotonicUsec(u64),
    /// `EXTEND_TIMEOUT_USEC=`.
    ExtendTimeoutUsec(u64),
    /// `WATCHDOG=1`: alive.
    Watchdog,
    /// `FDSTORE=1`: keep the descriptors sent with this message.
    FdStore,
    /// `FDNAME=`: their name.
    FdName(&'a str),
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Ready => f.write_str("READY=1"),
            Message::Reloading => f.write_str("RELOADING=1"),
            Message::Stopping => f.write_str("STOPPING=1"),
            Message::Status(text) => write!(f, "STATUS={}", one_line(text)),
            Message::Errno(errno) => write!(f, "ERRNO={errno}"),
            Message::MainPid(pid) => write!(f, "MAINPID={pid}"),
            Message::MonotonicUsec(usec) => write!(f, "MONOTONIC_USEC={usec}"),
            Message::ExtendTimeoutUsec(usec) => write!(f, "EXTEND_TIMEOUT_USEC={usec}"),
            Message::Watchdog => f.write_str("WATCHDOG=1"),
            Message::FdStore => f.write_str("FDSTORE=1"),
            Message::FdName(name) => write!(f, "FDNAME={name}"),
        }
    }
}

/// The connected socket, once opened; `Closed` when there is no notify socket at all.
static SOCKET: Mutex<State> = Mutex::new(State::Unopened);

enum State {
    /// Nobody looked yet: the first use reads `$NOTIFY_SOCKET`.
    Unopened,
    /// There is no notify socket: every message is a no-op.
    Closed,
    /// Connected to the service manager's socket; `shown` names it in errors.
    Open { socket: UnixDatagram, shown: String },
}

/// Whether `$NOTIFY_SOCKET` names a socket (used to choose the foreground, before the socket is opened).
pub(crate) fn socket() -> Option<OsString> {
    std::env::var_os(NOTIFY_SOCKET).filter(|s| !s.is_empty())
}

/// Whether messages go anywhere: the socket is open, or will be on first use.
pub(crate) fn active() -> bool {
    match &*lock() {
        State::Open { .. } => true,
        State::Closed => false,
        State::Unopened => socket().is_some(),
    }
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    SOCKET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens and connects the notify socket named by `$NOTIFY_SOCKET`, if any, takes the watchdog's interval,
/// and removes the variables from the environment where the process runs one thread (`alone`; another
/// thread could be reading it). Called by `Daemon::start` after inherited fds were closed and before
/// chroot or the privilege drop. An address that cannot work (too long, relative, vsock) is an error that
/// names it and says why.
pub(crate) fn open(alone: Option<&SingleThread>) -> Result<(), Error> {
    let mut state = lock();
    if matches!(*state, State::Unopened) {
        *state = connect(socket())?;
    }
    let _ = WATCHDOG_INTERVAL.set(watchdog_from_env());
    // The daemon reports through the open socket; a program it spawns must not inherit the address, nor
    // think it is watched.
    if let Some(alone) = alone {
        for name in [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID] {
            alone.remove_var(name);
        }
    }
    Ok(())
}

/// The socket for `address`, connected (so that sending needs no path lookup, even from inside a chroot).
fn connect(address: Option<OsString>) -> Result<State, Error> {
    let Some(address) = address else {
        return Ok(State::Closed);
    };
    let shown = address.to_string_lossy().into_owned();
    let refuse =
        |why: String| Err(Error::new(Step::Notify, Some(shown.clone()), None).with_detail(why));
    let bytes = address.as_bytes();
    let fail = |e: std::io::Error| Error::new(Step::Notify, Some(shown.clone()), e.raw_os_error());
    if bytes.starts_with(b"vsock") {
        return refuse(
            "vsock notify addresses (systemd 254 and later, in virtual machines) are not supported; \
             run the service with a local NOTIFY_SOCKET (a path or an @abstract name)"
                .into(),
        );
    }
    let name = bytes.strip_prefix(b"@");
    let length = name.unwrap_or(bytes).len();
    if length > MAX_PATH {
        return refuse(format!(
            "NOTIFY_SOCKET is {length} bytes long, and a socket address holds at most {MAX_PATH}"
        ));
    }
    if name.is_none() && !bytes.starts_with(b"/") {
        return refuse("NOTIFY_SOCKET must be an absolute path or an @abstract name".into());
    }
    let socket = UnixDatagram::unbound().map_err(fail)?;
    match name {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(fail)?;
            socket.connect_addr(&address).map_err(fail)?;
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Some(_) => return refuse("abstract socket names exist only on Linux".into()),
        None => socket.connect(&address).map_err(fail)?,
    }
    Ok(State::Open { socket, shown })
}

/// Sends `messages` as one datagram; a no-op without a notify socket.
pub(crate) fn send(messages: &[Message<'_>]) -> Result<(), Error> {
    let lines: Vec<String> = messages.iter().map(ToString::to_string).collect();
    send_datagram(&lines.join("\n"))
}

/// Keeps `fd` in the service's file descriptor store under `name` (`FDSTORE=1`, `FDNAME=`), so that the
/// next start of the service gets it back in `LISTEN_FDS`; a no-op without a notify socket. systemd keeps
/// one copy of a socket sent twice.
pub(crate) fn store_fd(name: &str, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
    let message = [Message::FdStore, Message::FdName(name)]
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let mut state = lock();
    if matches!(*state, State::Unopened) {
        *state = connect(socket())?;
    }
    let State::Open { socket, shown } = &*state else {
        return Ok(());
    };
    crate::sys::io::send_with_fds(std::os::fd::AsFd::as_fd(socket), message.as_bytes(), &[fd])
        .map_err(|e| Error::new(Step::Notify, Some(shown.clone()), e.raw_os_error()))
}

/// Sends one datagram of `KEY=VALUE` lines; a no-op without a notify socket.
fn send_datagram(message: &str) -> Result<(), Error> {
    let mut state = lock();
    if matches!(*state, State::Unopened) {
        // A program that never called `Daemon::start`: open on first use, leave the environment alone.
        *state = connect(socket())?;
    }
    let State::Open { socket, shown } = &*state else {
        return Ok(());
    };
    loop {
        match socket.send(message.as_bytes()) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::new(
                    Step::Notify,
                    Some(shown.clone()),
                    e.raw_os_error(),
                ));
            }
        }
    }
}

/// The datagram for `lines`: each a `KEY=VALUE` assignment without a newline, joined by newlines.
fn encode(lines: &[&str]) -> Result<String, String> {
    for line in lines {
        let key = line.split_once('=').map_or("", |(k, _)| k);
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "{line:?} is not a KEY=VALUE assignment with an upper-case key"
            ));
        }
        if line.contains('\n') || line.contains('\0') {
            return Err(format!("{line:?} contains a newline or a NUL byte"));
        }
    }
    Ok(lines.join("\n"))
}

/// Makes free text fit on one `STATUS=` line: newlines become spaces, NUL bytes go.
fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect()
}

/// A failed start: `STATUS=` with the sentence the launcher prints, and `ERRNO=` when there is an OS
/// error. Nothing to report to is not a failure.
pub(crate) fn failed(error: &Error) {
    let status = error.to_string();
    let mut messages = vec![Message::Status(&status)];
    messages.extend(error.errno().map(Message::Errno));
    let _ = send(&messages);
}

/// Sends `READY=1`, preceded by `MAINPID=` when the daemon forked (systemd must learn which process to
/// watch).
pub(crate) fn ready(main_pid: Option<u32>) -> Result<(), Error> {
    match main_pid {
        Some(pid) => send(&[Message::MainPid(pid), Message::Ready]),
        None => send(&[Message::Ready]),
    }
}

/// Whether `STOPPING=1` went out already (from the Terminate event, or when `main` returned).
static STOPPING_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `STOPPING=1`, once: on the Terminate event and again when `main` returns would say the same twice.
pub(crate) fn stopping_once() {
    if !STOPPING_SENT.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let _ = stopping();
    }
}

/// A reload starts: `RELOADING=1` with `MONOTONIC_USEC=`, `CLOCK_MONOTONIC` read now (systemd 253+
/// checks that it is later than the moment it sent the reload signal).
pub(crate) fn reloading() {
    if !active() {
        return;
    }
    let now = crate::sys::process::monotonic_usec();
    let _ = send(&[Message::Reloading, Message::MonotonicUsec(now)]);
}

/// The reload is over: `READY=1`, with `STATUS=` saying why when it failed (the daemon keeps running).
pub(crate) fn reload_done(result: Result<(), &str>) {
    let _ = match result {
        Ok(()) => send(&[Message::Ready]),
        Err(reason) => send(&[
            Message::Status(&format!("reload failed: {reason}")),
            Message::Ready,
        ]),
    };
}

/// `EXTEND_TIMEOUT_USEC=`.
pub(crate) fn extend_timeout(extra: Duration) -> Result<(), Error> {
    let usec = u64::try_from(extra.as_micros()).unwrap_or(u64::MAX);
    send(&[Message::ExtendTimeoutUsec(usec)])
}

/// Sets the one-line status that `systemctl status` shows (`STATUS=`); newlines become spaces.
///
/// A no-op without a notify socket.
///
/// # Errors
///
/// Only when there is a notify socket and sending on it fails (for example `ECONNREFUSED` once the
/// service manager is gone); the error names the socket and the OS error.
///
/// ```no_run
/// daemon_runtime::notify::set_status("serving 3 clients")?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn set_status(text: impl fmt::Display) -> Result<(), Error> {
    send(&[Message::Status(&text.to_string())])
}

/// Tells the service manager that the daemon is shutting down (`STOPPING=1`).
///
/// The runtime sends it for you when `main` returns and when the program receives the Terminate event
/// (the signal API); call it yourself when you stop some other way. A no-op without a notify socket.
///
/// # Errors
///
/// Only when there is a notify socket and sending on it fails (for example `ECONNREFUSED` once the
/// service manager is gone); the error names the socket and the OS error.
///
/// ```no_run
/// daemon_runtime::notify::stopping()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn stopping() -> Result<(), Error> {
    send(&[Message::Stopping])
}

/// Sends one raw notification of several `KEY=VALUE` lines (see `sd_notify(3)`), for what the other
/// functions do not cover (`FDSTORE=1` needs fds and is not supported; `NOTIFYACCESS=`, `WATCHDOG=trigger`,
/// `WATCHDOG_USEC=`, `ERRNO=`...). A line without `=`, with a key that is not upper case, or with a
/// newline is an error; a no-op without a notify socket.
///
/// # Errors
///
/// A line that is not a `KEY=VALUE` assignment (the message says which), or, when there is a notify
/// socket, a failure to send on it.
///
/// ```no_run
/// daemon_runtime::notify::raw(&["STATUS=degraded", "ERRNO=5"])?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn raw(lines: &[&str]) -> Result<(), Error> {
    // Checked only where there is a socket to send to, naming it: without one, every call is a no-op.
    if !active() {
        return Ok(());
    }
    let message = encode(lines).map_err(|why| {
        let shown = socket().map(|s| s.to_string_lossy().into_owned());
        Error::new(Step::Notify, shown, None).with_detail(why)
    })?;
    send_datagram(&message)
}

/// The watchdog's interval taken from the environment at start (`None` inside when systemd asked for no
/// watchdog, or asked another process); unset before `start`.
static WATCHDOG_INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();

/// The watchdog's interval from `$WATCHDOG_USEC`, when `$WATCHDOG_PID` is this process or unset.
fn watchdog_from_env() -> Option<Duration> {
    // Without an interval there is nothing to compare the pid with (every start pays for this check).
    let usec = std::env::var(WATCHDOG_USEC).ok()?;
    parse_watchdog(
        Some(&usec),
        std::env::var(WATCHDOG_PID).ok().as_deref(),
        std::process::id(),
    )
}

/// The interval `usec` says, when `pid` is `own_pid` or absent.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec = usec?.parse::<u64>().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec))
}

/// How often systemd wants a sign of life (`WatchdogSec=`), when it watches this process; `None`
/// otherwise. Ping with [`ping_watchdog()`] at least this often (half of it is the usual period).
///
/// ```no_run
/// if let Some(interval) = daemon_runtime::notify::watchdog_interval() {
///     println!("ping every {:?}", interval / 2);
/// }
/// ```
pub fn watchdog_interval() -> Option<Duration> {
    WATCHDOG_INTERVAL
        .get()
        .copied()
        .unwrap_or_else(watchdog_from_env)
}

/// Tells systemd the daemon is alive (`WATCHDOG=1`). A no-op without a notify socket.
///
/// # Errors
///
/// Only when there is a notify socket and sending on it fails (for example `ECONNREFUSED` once the
/// service manager is gone); the error names the socket and the OS error.
///
/// ```no_run
/// loop {
///     // ... one round of the main loop ...
///     daemon_runtime::notify::ping_watchdog()?;
///     # break;
/// }
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn ping_watchdog() -> Result<(), Error> {
    send(&[Message::Watchdog])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_newline_separated_assignments() {
        assert_eq!(encode(&["READY=1"]).unwrap(), "READY=1");
        assert_eq!(
            encode(&["MAINPID=42", "READY=1"]).unwrap(),
            "MAINPID=42\nREADY=1"
        );
        assert_eq!(encode(&["STATUS="]).unwrap(), "STATUS=");
        for bad in ["READY", "=1", "ready=1", "STATUS=a\nREADY=1", "X Y=1"] {
            assert!(encode(&[bad]).is_err(), "{bad:?} accepted");
        }
        assert_eq!(one_line("a\nb\r\0c"), "a b c");
    }

    #[test]
    fn each_message_is_one_assignment() {
        assert_eq!(Message::Status("a\nb").to_string(), "STATUS=a b");
        assert_eq!(Message::MainPid(42).to_string(), "MAINPID=42");
        assert_eq!(
            Message::ExtendTimeoutUsec(5).to_string(),
            "EXTEND_TIMEOUT_USEC=5"
        );
        for message in [
            Message::Ready,
            Message::Reloading,
            Message::Stopping,
            Message::Watchdog,
        ] {
            assert!(encode(&[&message.to_string()]).is_ok(), "{message}");
        }
    }

    #[test]
    fn the_watchdog_interval_applies_to_our_pid_only() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(parse_watchdog(Some("1000000"), None, 7), second);
        assert_eq!(parse_watchdog(Some("1000000"), Some("7"), 7), second);
        assert_eq!(parse_watchdog(Some("1000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("1000000"), Some("x"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("-5"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        let long = format!("/{}", "x".repeat(200));
        let cases = [
            (
                long.as_str(),
                "201 bytes long, and a socket address holds at most 107",
            ),
            ("vsock:2:1234", "vsock notify addresses"),
            ("run/notify", "absolute path or an @abstract name"),
        ];
        for (address, why) in cases {
            let Err(error) = connect(Some(address.into())) else {
                panic!("{address} accepted")
            };
            let text = error.to_string();
            assert!(text.starts_with("cannot notify systemd at "), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    fn a_connected_socket_reaches_the_listener_and_survives_its_path() {
        let dir = std::env::temp_dir().join(format!("notify-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let State::Open { socket, .. } = connect(Some(path.clone().into())).unwrap() else {
            panic!("not opened")
        };
        // Like a chroot: the path is gone, the connection is not.
        std::fs::remove_dir_all(&dir).unwrap();
        socket.send(b"READY=1").unwrap();
        let mut buffer = [0u8; 64];
        let n = listener.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1");
    }
}
