//! systemd's watchdog (`WatchdogSec=`): the service sends `WATCHDOG=1` more often than `$WATCHDOG_USEC`,
//! or systemd kills it (SIGABRT) and applies `Restart=`.

use std::sync::OnceLock;
use std::time::Duration;

use crate::notify;

const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
const WATCHDOG_PID: &str = "WATCHDOG_PID";
/// The shortest time between two automatic pings.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Who sends the watchdog pings, when systemd asks for them (`WatchdogSec=` in the unit).
///
/// `Auto` proves less than it seems: the runtime's thread keeps pinging as long as the process is
/// scheduled, even when `main` is stuck in a deadlock or an endless loop. It catches a process that is
/// stopped, swapped to death or wedged in the kernel, and it is a good start; a daemon that wants the
/// watchdog to catch a hung main loop uses `Manual` and calls [`notify::watchdog()`] from that loop.
///
/// ```
/// use daemon_runtime::{Daemon, Watchdog};
///
/// let daemon = Daemon::new().watchdog(Watchdog::Auto);
/// # drop(daemon);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Watchdog {
    /// A thread of the runtime, started in the daemon after the forks, pings at half the interval.
    Auto,
    /// The program pings with [`notify::watchdog()`], at least every
    /// [`notify::watchdog_interval()`]; nothing is sent for it.
    #[default]
    Manual,
}

/// The interval taken from the environment at start (`None` inside when systemd asked for no watchdog,
/// or asked another process); unset before `start`.
static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();

/// Reads the watchdog variables (the interval applies when `$WATCHDOG_PID` is this process or unset) and
/// removes them, so that programs the daemon spawns do not think they are watched. Called by
/// `Daemon::start` while single-threaded, before the forks: the launcher's pid is the one systemd named,
/// and the daemon takes over as the main process (`MAINPID=`).
pub(crate) fn take_env() {
    let interval = from_env();
    std::env::remove_var(WATCHDOG_USEC);
    std::env::remove_var(WATCHDOG_PID);
    let _ = INTERVAL.set(interval);
}

fn from_env() -> Option<Duration> {
    // Without an interval there is nothing to compare the pid with (every start pays for this check).
    let usec = std::env::var(WATCHDOG_USEC).ok()?;
    parse(
        Some(&usec),
        std::env::var(WATCHDOG_PID).ok().as_deref(),
        std::process::id(),
    )
}

/// The interval `usec` says, when `pid` is `own_pid` or absent.
fn parse(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    let usec = usec?.parse::<u64>().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec))
}

/// Starts the pinging thread (`Watchdog::Auto`) when systemd asked for a watchdog. Called in the daemon,
/// after the forks (a thread does not survive a fork, and would make the launcher multi-threaded).
pub(crate) fn start(mode: Watchdog) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    if mode != Watchdog::Auto || !notify::active() {
        return;
    }
    // Half the interval, but never a busy loop: a WATCHDOG_USEC of a few microseconds (a typo, or an
    // environment someone else wrote) must not turn the thread into a spinning CPU hog.
    let period = (interval / 2).max(MIN_PERIOD);
    // The thread starts with every signal blocked (it inherits the mask), so that signals meant for the
    // program (SIGTERM, SIGHUP) are never delivered to it.
    let all = nix::sys::signal::SigSet::all();
    let previous = all.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_SETMASK);
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            // A failed ping is not fatal: systemd's own timeout is the judge.
            let _ = notify::send("WATCHDOG=1");
            std::thread::sleep(period);
        });
    if let Ok(previous) = previous {
        let _ = previous.thread_set_mask();
    }
    if let Err(error) = spawned {
        let _ = notify::status(format_args!("cannot start the watchdog thread: {error}"));
    }
}

/// How often systemd wants a sign of life (`WatchdogSec=`), when it watches this process; `None`
/// otherwise. Ping with [`watchdog()`] at least this often (half of it is the usual period).
///
/// ```no_run
/// if let Some(interval) = daemon_runtime::notify::watchdog_interval() {
///     println!("ping every {:?}", interval / 2);
/// }
/// ```
pub fn watchdog_interval() -> Option<Duration> {
    INTERVAL.get().copied().unwrap_or_else(from_env)
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
///     daemon_runtime::notify::watchdog()?;
///     # break;
/// }
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn watchdog() -> Result<(), crate::Error> {
    notify::send("WATCHDOG=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_applies_to_our_pid_only() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(parse(Some("1000000"), None, 7), second);
        assert_eq!(parse(Some("1000000"), Some("7"), 7), second);
        assert_eq!(parse(Some("1000000"), Some("8"), 7), None);
        assert_eq!(parse(Some("1000000"), Some("x"), 7), None);
        assert_eq!(parse(Some("0"), None, 7), None);
        assert_eq!(parse(Some("-5"), None, 7), None);
        assert_eq!(parse(None, Some("7"), 7), None);
    }
}
