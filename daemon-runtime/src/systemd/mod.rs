//! systemd's side of a daemon: the notify protocol with its typed messages (notify.rs), the watchdog
//! (watchdog.rs) and socket activation (listen.rs). Without a service manager each is a no-op.

pub mod listen;
pub(crate) mod notify;
pub(crate) mod watchdog;
