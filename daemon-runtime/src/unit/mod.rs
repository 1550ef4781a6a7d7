//! The service manager's file for this program, derived from its keys: a systemd unit (systemd.rs) and a
//! launchd property list (launchd.rs). Each key is applied once, by the service manager or by the runtime,
//! never both and never neither: plan.rs decides which, and the file says it in a comment per key. The
//! keys the manager applies are also named in the file's environment (`DAEMON_KEYS_APPLIED`), and at start
//! the runtime checks them instead of applying them (applied.rs), so a file edited away from the keys is
//! refused, not obeyed in silence. `install` and `uninstall` put the unit in place and take it away
//! (install.rs).

mod applied;
// The files themselves are the `control` feature's (`myapp unit`); the check of what a file applied is
// every start's.
#[cfg(all(feature = "control", target_os = "linux"))]
mod install;
#[cfg(feature = "control")]
mod launchd;
#[cfg(feature = "control")]
mod manager;
#[cfg(feature = "control")]
mod plan;
#[cfg(feature = "control")]
mod systemd;

pub(crate) use applied::adopt;
#[cfg(all(feature = "control", target_os = "linux"))]
pub(crate) use install::{check_host, install, uninstall};
#[cfg(feature = "control")]
pub use manager::ServiceManager;
#[cfg(feature = "control")]
use manager::shown;
#[cfg(feature = "control")]
pub(crate) use manager::{Facts, Stop, program, render};

/// The environment variable a generated file sets: the keys the service manager applies, which the
/// runtime then checks instead of applying (`umask,nofile`).
pub(crate) use crate::systemd::KEYS_APPLIED as APPLIED_ENV;
