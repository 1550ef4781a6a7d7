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
//! # Anatomy of the crate
//!
//! The API: [`daemon`] (the attribute, whose keys are listed there) and [`Daemon`] (the builder, one
//! method per key) start the daemon and give it a [`Running`] handle; [`ready()`] reports readiness when
//! the program chooses; [`signals()`] delivers SIGTERM, SIGHUP and friends as [`Signal`] events. Topic
//! modules hold the rest: [`signal`] (events, reload acknowledgement), [`control`] (`stop`, `status`,
//! `reload` from outside, and the command words), [`notify`] (systemd's notify protocol), [`listen`]
//! (socket activation), [`logs`] (reopening the log files).
//!
//! Inside, the folders follow the daemon's life, and imports flow one way, from the leaves up:
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | leaves | `error`, `sys` | the error type; the OS layer: every libc call, raw system call and the assembly intermediate, the only module with `unsafe` code (with the macro's glue), and the single-thread contract for the environment |
//! | blocks | `pidfile`, `logfile`, `identity`, `caps`, `hardening`, `threads`, `handshake`, `readiness`, `systemd` | one concept each: the locked pid file and its record, log files opened and reopened, users and groups, capabilities, limits, the thread check, the launcher's pipe, readiness, systemd's notify, watchdog and socket activation |
//! | configuration | `config` | every key's value, checked, as the builder produced it |
//! | phases | `launch`, `setup`, `signal`, `control` | in the launcher (prepare, fork, wait, the PID 1 init); in the daemon (the ordered steps); the signal API; the actions from outside |
//! | facades | `builder`, `start`, `running`, `__private`, this file | the public types and the macro's entry |
//!
//! A test (`tests/tests/layers.rs`) fails when a module imports from a layer above its own.

#![warn(missing_docs)]
#![deny(unsafe_code)]

// Leaves.
mod error;
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
mod systemd;
mod threads;

// The configuration the builder produces and the phases read.
mod config;

// Phases.
pub mod control;
mod launch;
mod setup;
pub mod signal;

// Facades.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod __private;
mod builder;
mod running;
mod start;

/// The README's Rust code, compiled by `cargo test` as doctests (never run: they daemonize).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

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
/// `NOTIFY_SOCKET` from the environment, so that programs the daemon spawns do not report on its behalf.
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

/// The log files after the start: reopened after rotation, even after chroot and the user switch.
///
/// With [`Daemon::reopen_logs_on`] (or the attribute's `reopen_logs_on`) the runtime reopens them on a
/// signal and answers `myapp reopen-logs`; [`reopen`](logs::reopen) is for a program that decides itself.
pub mod logs {
    pub use crate::logfile::reopen::reopen;
}

/// Turns `fn main` into a Unix daemon.
///
/// ```no_run
/// use daemon_runtime::daemon;
///
/// #[daemon(umask = 0o027, workdir = "/var/lib/app", pid_file = "/run/app.pid",
///          stdout = "/var/log/app.out", stderr = "/var/log/app.err", user = "app", group = "app")]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     Ok(())
/// }
/// ```
///
/// The body runs in the daemon; the launching process exits 0 once the daemon is ready, or prints
/// `PROGRAM: MESSAGE` and exits 1 if any step failed (the body then never runs). `main` keeps its return
/// type (`()`, `Result`, `ExitCode`, anything `Termination`), its doc comments and attributes.
///
/// Every key is optional; each but `crate` is also a [`Daemon`] builder method of the same name.
///
/// | key | value | default | meaning |
/// |---|---|---|---|
/// | `umask` | integer literal, 0..=0o777, any base | `0` | umask(2) in the daemon |
/// | `workdir` | string literal absolute path | `"/"` | chdir(2) in the daemon (after chroot, if any) |
/// | `pid_file` | string literal absolute path | none | pid file (0o644) with its lock on `PID_FILE.lock` (0o600), removed when main returns |
/// | `stdout`, `stderr` | string literal absolute path | forked: `/dev/null`; foreground: as inherited | append to this file (created 0o640), forked or in the foreground |
/// | `user`, `group` | string literal: name or numeric id | none | drop privileges (group: the user's) |
/// | `chroot` | string literal absolute path | none | chroot(2) before chdir |
/// | `keep_fds` | list of integer literals above 2 | `[]` | fds the daemon inherits; all others are closed |
/// | `readiness` | `"auto"` or `"manual"` | `"auto"` | `"manual"`: the launcher waits for [`ready()`] ([`Readiness`]) |
/// | `ready_timeout` | integer literal, seconds, at least 1 | `90` | the launcher gives up after this |
/// | `watchdog` | `"auto"` or `"manual"` | `"manual"` | who pings systemd's `WatchdogSec=`: a runtime thread, or the body ([`notify::ping_watchdog()`]) |
/// | `privileged` | path of a `fn() -> Result<T, E>` | none | run as root before chroot and the drop, in the launcher's directory; `main` takes its `T` |
/// | `keep_caps` | list of capability names | `[]` | kept after the switch to `user` (permitted, effective) |
/// | `ambient_caps` | `true` or `false` | `false` | the kept capabilities are also ambient (kept across exec) |
/// | `core_dumps` | `true` or `false` | `true` | `false`: `RLIMIT_CORE` 0 and not dumpable |
/// | `no_new_privs` | `true` or `false` | `false` | `true`: `PR_SET_NO_NEW_PRIVS`, exec gains no privileges |
/// | `nofile` | integer literal, or `[SOFT, HARD]` | inherited | `RLIMIT_NOFILE` (one value: soft and hard) |
/// | `nice` | integer literal, -20..=19 | inherited | the nice value, set while still root |
/// | `env` | `"clean"`, `"inherit"` or list of names | `"inherit"` | the environment the daemon keeps ([`Env`]) |
/// | `commands` | `true` or `false` (needs `pid_file`) | `false` | first argument `start`/`stop`/`status`/`restart`/`reload` acts on the daemon: see [`Daemon::commands`] |
/// | `stop_retry` | string literal schedule | `"TERM/30/KILL/5"` | how `stop` escalates, as start-stop-daemon's `--retry`: see [`Daemon::stop_retry`] |
/// | `reopen_logs_on` | `"SIGUSR1"`, `"SIGUSR2"` or `"SIGHUP"` | none | [`logs::reopen`] on this signal |
/// | `crate` | string literal (a Rust path) | `"::daemon_runtime"` | where this crate is, when renamed |
///
/// `async fn main` works under a runtime's attribute, placed above or below `#[daemon]`: the process forks
/// before the runtime starts any thread. With `privileged`, put `#[daemon]` above the runtime's attribute
/// (which refuses a `main` with a parameter): `async fn main(listener: TcpListener)` then gets the value.
///
/// ```no_run
/// use daemon_runtime::daemon;
///
/// #[daemon(pid_file = "/run/app.pid")]
/// #[tokio::main]
/// async fn main() {}
/// ```
///
/// Mistakes are compile errors on the offending token: an unknown or repeated key, a value of the wrong
/// type, a umask above 0o777, an empty path, a NUL byte, `async fn main` without a runtime.
#[doc(inline)]
pub use daemon_macro::daemon;
