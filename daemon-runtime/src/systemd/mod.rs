//! systemd's side of a daemon: the notify protocol with its typed messages (notify.rs), the watchdog
//! (watchdog.rs) and socket activation (listen.rs). Without a service manager each is a no-op.

pub mod listen;
pub(crate) mod notify;
pub(crate) mod watchdog;

/// The keys the service manager's file applies (`umask,nofile`), which the runtime checks instead of
/// applying them: set by the files `myapp unit` writes (see the unit module), read at start, and removed
/// with systemd's own variables so that programs the daemon spawns do not take them for theirs.
pub(crate) const KEYS_APPLIED: &str = "DAEMON_KEYS_APPLIED";
