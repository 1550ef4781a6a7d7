//! systemd's watchdog (`WatchdogSec=`): the service sends `WATCHDOG=1` more often than `$WATCHDOG_USEC`,
//! or systemd kills it (SIGABRT) and applies `Restart=`.

use std::time::Duration;

use super::notify::{self, Message};
use crate::sys::signal::spawn_deaf;
/// The shortest time between two automatic pings.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Who sends the watchdog pings, when systemd asks for them (`WatchdogSec=` in the unit).
///
/// `Auto` proves less than it seems: the runtime's thread keeps pinging as long as the process is
/// scheduled, even when `main` is stuck in a deadlock or an endless loop. It catches a process that is
/// stopped, swapped to death or wedged in the kernel, and it is a good start; a daemon that wants the
/// watchdog to catch a hung main loop uses `Manual` and calls [`notify::ping_watchdog()`](crate::notify::ping_watchdog) from that loop.
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
    /// The program pings with [`notify::ping_watchdog()`](crate::notify::ping_watchdog), at least every
    /// [`notify::watchdog_interval()`](crate::notify::watchdog_interval); nothing is sent for it.
    #[default]
    Manual,
}

/// Starts the pinging thread (`Watchdog::Auto`) when systemd asked for a watchdog. Called in the daemon,
/// after the forks (a thread does not survive a fork, and would make the launcher multi-threaded).
pub(crate) fn start(mode: Watchdog) {
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    if mode != Watchdog::Auto || !notify::active() {
        return;
    }
    // Half the interval, but never a busy loop: a WATCHDOG_USEC of a few microseconds (a typo, or an
    // environment someone else wrote) must not turn the thread into a spinning CPU hog.
    let period = (interval / 2).max(MIN_PERIOD);
    let spawned = spawn_deaf("watchdog", move || {
        loop {
            // A failed ping is not fatal: systemd's own timeout is the judge.
            let _ = notify::send(&[Message::Watchdog]);
            std::thread::sleep(period);
        }
    });
    if let Err(error) = spawned {
        let _ = notify::set_status(format_args!("cannot start the watchdog thread: {error}"));
    }
}
