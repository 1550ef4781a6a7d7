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
//! notify::status("loading 12000 records")?;
//! notify::extend_timeout(Duration::from_secs(30))?; // loading takes longer than TimeoutStartSec
//! notify::status("serving")?;
//! notify::raw(&["NOTIFYACCESS=main"])?; // anything else sd_notify(3) defines
//! # Ok::<(), daemon_runtime::Error>(())
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Step};
pub use crate::watchdog::{watchdog, watchdog_interval};

/// The variable systemd sets for `Type=notify` services (and others with `NotifyAccess=`).
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The longest socket path `sockaddr_un` holds, without its terminating NUL (`sun_path` is 108 bytes on
/// Linux).
const MAX_PATH: usize = 107;

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

/// Opens and connects the notify socket named by `$NOTIFY_SOCKET`, if any, and removes the variable from
/// the environment. Called by `Daemon::start` while the process is single-threaded, after inherited fds
/// were closed and before chroot or the privilege drop. An address that cannot work (too long, relative,
/// vsock) is an error that names it and says why.
pub(crate) fn open() -> Result<(), Error> {
    let mut state = lock();
    if matches!(*state, State::Unopened) {
        *state = connect(socket())?;
    }
    // The daemon reports through the open socket; a program it spawns must not inherit the address.
    std::env::remove_var(NOTIFY_SOCKET);
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

/// Sends `lines` (each `KEY=VALUE`) as one datagram; a no-op without a notify socket.
pub(crate) fn send_lines(lines: &[&str]) -> Result<(), Error> {
    let mut state = lock();
    if matches!(*state, State::Unopened) {
        // A program that never called `Daemon::start`: open on first use, leave the environment alone.
        *state = connect(socket())?;
    }
    let State::Open { socket, shown } = &*state else {
        return Ok(());
    };
    let message = encode(lines)
        .map_err(|why| Error::new(Step::Notify, Some(shown.clone()), None).with_detail(why))?;
    loop {
        match socket.send(message.as_bytes()) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::new(
                    Step::Notify,
                    Some(shown.clone()),
                    e.raw_os_error(),
                ))
            }
        }
    }
}

/// Sends one state line; a no-op without a notify socket.
pub(crate) fn send(line: &str) -> Result<(), Error> {
    send_lines(&[line])
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
    let status = format!("STATUS={}", one_line(&error.to_string()));
    let errno = error.errno().map(|n| format!("ERRNO={n}"));
    let mut lines = vec![status.as_str()];
    lines.extend(errno.as_deref());
    let _ = send_lines(&lines);
}

/// Sends `READY=1`, preceded by `MAINPID=` when the daemon forked (systemd must learn which process to
/// watch).
pub(crate) fn ready(main_pid: Option<u32>) -> Result<(), Error> {
    match main_pid {
        Some(pid) => send_lines(&[&format!("MAINPID={pid}"), "READY=1"]),
        None => send("READY=1"),
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
    let now = monotonic_usec();
    let _ = send_lines(&["RELOADING=1", &format!("MONOTONIC_USEC={now}")]);
}

/// `CLOCK_MONOTONIC` in microseconds.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which lives for the call.
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec).unwrap_or(0) / 1000;
    seconds.saturating_mul(1_000_000).saturating_add(micros)
}

/// The reload is over: `READY=1`, with `STATUS=` saying why when it failed (the daemon keeps running).
pub(crate) fn reload_done(result: Result<(), &str>) {
    let _ = match result {
        Ok(()) => send("READY=1"),
        Err(reason) => send_lines(&[
            &format!("STATUS=reload failed: {}", one_line(reason)),
            "READY=1",
        ]),
    };
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
/// daemon_runtime::notify::status("serving 3 clients")?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn status(text: impl std::fmt::Display) -> Result<(), Error> {
    send(&format!("STATUS={}", one_line(&text.to_string())))
}

/// Asks for more time: the service manager (and, before readiness in fork mode, the launcher waiting on
/// [`ready_timeout`](crate::Daemon::ready_timeout)) waits at least `extra` from now before giving up on
/// the current start, reload or stop (`EXTEND_TIMEOUT_USEC=`). Call it again before `extra` runs out to
/// keep extending.
///
/// Under systemd this sends the message; in fork mode before [`ready()`](crate::ready) it tells the
/// launcher through the handshake pipe. Elsewhere it does nothing.
///
/// # Errors
///
/// Only when there is a notify socket and sending on it fails (for example `ECONNREFUSED` once the
/// service manager is gone); the error names the socket and the OS error.
///
/// ```no_run
/// use std::time::Duration;
///
/// for shard in 0..16 {
///     daemon_runtime::notify::extend_timeout(Duration::from_secs(20))?;
///     # let _ = shard; // load(shard)?;
/// }
/// daemon_runtime::ready()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn extend_timeout(extra: Duration) -> Result<(), Error> {
    crate::ready::extend(extra);
    send(&format!(
        "EXTEND_TIMEOUT_USEC={}",
        u64::try_from(extra.as_micros()).unwrap_or(u64::MAX)
    ))
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
    send("STOPPING=1")
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
    send_lines(lines)
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
