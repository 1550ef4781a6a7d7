//! Turn a Rust program into a correct Unix daemon: `#[daemon]` on `fn main`, or the [`Daemon`] builder.
//!
//! ```no_run
//! use daemon_runtime::daemon;
//!
//! #[daemon(umask = 0o027, workdir = "/var/lib/app", pid_file = "/run/app.pid")]
//! fn main() -> std::io::Result<()> {
//!     // Runs in the daemon: detached, in its own session, stdio on /dev/null.
//!     Ok(())
//! }
//! ```
//!
//! The launching process exits 0 only once the daemon is set up and ready. If any step fails, it prints
//! `PROGRAM: MESSAGE` on its stderr (`myapp: cannot change directory to /var/lib/app: No such file or
//! directory (os error 2)`), exits 1, and the body never runs. Under systemd `Type=notify`, as PID 1 in a
//! container, or with [`FOREGROUND_ENV`] set, it does not fork; the other steps still apply.
//!
//! The [`guide`] explains each part of a daemon's life: how it works, systemd and containers,
//! controlling a daemon, privileges, logs and rotation, and what each refusal means.
//!
//! # Features
//!
//! - `control` (off by default): acting on a running daemon from outside, and the service manager's file:
//!   the [`control`] module, the `commands` and `stop_retry` keys, and the [`Daemon`] methods `status`,
//!   `stop`, `reload`, `reopen_logs`, `reload_timeout`, `restart`, `upgrade`, `upgrade_with`, `unit`,
//!   `install`, `uninstall` (and [`Privileged`]'s `unit`, `install`, `uninstall`). A daemon that is only
//!   started (by systemd, a script, start-stop-daemon) does not compile them:
//!   `daemon-runtime = { version = "0.1", features = ["control"] }` for `myapp stop`.
//! - `tokio` (off by default): `Signals::recv().await` for programs running tokio.
//!
//! # Anatomy of the crate
//!
//! The API: [`daemon`] (the attribute, whose keys are listed there) and [`Daemon`] (the builder, one
//! method per key) start the daemon and give it a [`Running`] handle; [`ready()`] reports readiness when
//! the program chooses; [`signals()`] delivers SIGTERM, SIGHUP and friends as [`Signal`] events. Topic
//! modules hold the rest: [`signal`] (events, reload acknowledgement), [`control`] (`stop`, `status`,
//! `reload` from outside, the command words, and the service manager's file: `unit`, `install`),
//! [`notify`] (systemd's notify protocol), [`listen`] (socket activation), [`logs`] (where stdout and
//! stderr go; reopening the log files).
//!
//! Inside, the folders follow the daemon's life, and imports flow one way, from the leaves up:
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | leaves | `error`, `spelling`, `sys` | the error type; the edit distance behind "did you mean"; the OS layer: every libc call, raw system call and the assembly intermediate, the only module with `unsafe` code (with the macro's glue), and the single-thread contract for the environment |
//! | blocks | `pidfile`, `logfile`, `sink`, `identity`, `caps`, `hardening`, `threads`, `handshake`, `readiness`, `systemd` | one concept each: the locked pid file and its record, log files opened and reopened, the journal and syslog sinks, users and groups, capabilities, limits, the thread check, the launcher's pipe, readiness, systemd's notify, watchdog and socket activation |
//! | configuration | `config` | every key's value, checked, as the builder produced it |
//! | phases | `launch`, `setup`, `signal`, `control`, `unit` | in the launcher (prepare, fork, wait, the PID 1 init); in the daemon (the ordered steps); the signal API; the actions from outside; the service manager's file derived from the keys, and the check of what it applied |
//! | facades | `builder`, `start`, `running`, `__private`, `guide`, this file | the public types, the macro's entry, the guide |
//!
//! A test (`tests/tests/layers.rs`) fails when a module imports from a layer above its own.
//!
// Links to the `control` feature's items: to this build's where it has them, to docs.rs's (built with
// every feature) where it does not.
#![cfg_attr(feature = "control", doc = "[`control`]: crate::control")]
#![cfg_attr(
    not(feature = "control"),
    doc = "[`control`]: https://docs.rs/daemon-runtime/latest/daemon_runtime/control/index.html"
)]
// docs.rs marks the items of a feature as such.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(unsafe_code)]

// Leaves.
mod error;
mod spelling;
#[allow(unsafe_code)]
mod sys;

// Blocks.
mod caps;
mod handshake;
mod hardening;
mod identity;
mod logfile;
mod pidfile;
mod readiness;
mod sink;
mod systemd;
mod threads;

// The configuration the builder produces and the phases read.
mod config;

// Phases.
#[cfg(feature = "control")]
pub mod control;
mod launch;
mod setup;
pub mod signal;
mod unit;

// Facades.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod __private;

// Documentation only.
mod builder;
pub mod guide;
mod running;
mod start;

pub use builder::{Daemon, Privileged};
pub use error::{Error, Step};
pub use hardening::Env;
pub use readiness::{Readiness, not_ready, ready};
pub use running::Running;
pub use signal::{Signal, signals};
pub use start::FOREGROUND_ENV;
pub use systemd::listen;
pub use systemd::watchdog::Watchdog;

/// systemd's notify protocol (`sd_notify(3)`): state lines such as `STATUS=` sent to the socket named by
/// `$NOTIFY_SOCKET`.
///
/// Every function here is a no-op returning `Ok(())` when the service manager gave no notify socket, so a
/// program can call them unconditionally: under systemd they report, elsewhere they cost nothing.
///
/// The runtime opens the socket once, during [`Daemon::start`] (before any chroot and before privileges
/// are dropped: the socket's path need not exist inside the jail, nor be writable by the daemon's user),
/// connects it, and sends on that connection for the daemon's whole life. It then removes
/// `NOTIFY_SOCKET` (and `WATCHDOG_USEC`, `WATCHDOG_PID`) from the environment, so that programs the daemon
/// spawns do not report on its behalf; but where the process already runs several threads (a builder
/// started late, in the foreground), whose `getenv` could race with the removal: then remove them from
/// the programs you spawn (`Command::env_remove`).
/// Programs that never call `start` get the socket opened on first use, and the variable left alone.
/// Readiness (`READY=1`), reloads (`RELOADING=1`) and the stop (`STOPPING=1`) are sent by the runtime:
/// see [`ready()`], [`signal::reloaded()`].
///
/// ```no_run
/// use std::time::Duration;
/// use daemon_runtime::notify;
///
/// notify::set_status("loading 12000 records")?;
/// notify::extend_timeout(Duration::from_secs(30))?; // loading takes longer than TimeoutStartSec
/// notify::set_status("serving")?;
/// notify::raw(&["NOTIFYACCESS=main"])?; // anything else sd_notify(3) defines
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub mod notify {
    pub use crate::readiness::extend_timeout;
    pub use crate::systemd::notify::{ping_watchdog, raw, set_status, stopping, watchdog_interval};
}

/// Where stdout and stderr go ([`Output`](logs::Output): a file, the journal, syslog), and the log
/// files after the start: reopened after rotation, even after chroot and the user switch.
///
/// With [`Daemon::reopen_logs_on`] (or the attribute's `reopen_logs_on`) the runtime reopens them on a
/// signal and answers `myapp reopen-logs`; [`reopen`](logs::reopen) is for a program that decides itself.
pub mod logs {
    pub use crate::logfile::reopen::reopen;
    pub use crate::sink::output::{Facility, Output};
}

#[doc = include_str!("daemon.md")]
#[doc = ""]
#[cfg_attr(
    feature = "control",
    doc = "[`Daemon::commands`]: crate::Daemon::commands\n[`Daemon::stop_retry`]: crate::Daemon::stop_retry"
)]
#[cfg_attr(
    not(feature = "control"),
    doc = "[`Daemon::commands`]: https://docs.rs/daemon-runtime/latest/daemon_runtime/struct.Daemon.html#method.commands\n\
           [`Daemon::stop_retry`]: https://docs.rs/daemon-runtime/latest/daemon_runtime/struct.Daemon.html#method.stop_retry"
)]
#[doc(inline)]
pub use daemon_macro::daemon;
