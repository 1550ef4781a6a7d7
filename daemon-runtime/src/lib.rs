//! Turn a Rust program into a correct Unix daemon: `#[daemon]` on `fn main`, or the [`Daemon`] builder.
//!
//! ```no_run
//! use daemon_runtime::daemon;
//!
//! #[daemon(umask = 0o027, workdir = "/var/lib/app")]
//! fn main() -> std::io::Result<()> {
//!     // Runs in the daemon: detached, in its own session, stdio on /dev/null.
//!     Ok(())
//! }
//! ```
//!
//! The launching process exits 0 only once the daemon is set up and ready. If any step fails, it prints
//! `PROGRAM: MESSAGE` on its stderr (`myapp: cannot change directory to /var/lib/app: No such file or
//! directory (os error 2)`), exits 1, and the body never runs.
//!
//! # What happens, step by step
//!
//! In the launcher (which must be single-threaded): Rust's stdout buffer is flushed (but at the program's
//! entry under `#[daemon]`, where nothing was printed yet); every inherited fd
//! above 2 is closed (`close_range(2)`, else the `/proc/self/fd` listing, else a loop to the hard limit),
//! except those kept with [`Daemon::keep_fds`] (with the builder, fds the program opened itself, which Rust
//! makes close-on-exec, stay open too); inherited ignored signals go back to their default and the
//! signal mask is emptied; a close-on-exec pipe is made and the intermediate process is started: on
//! x86-64 Linux it shares the launcher's memory, as with `vfork` (nothing is copied for it), elsewhere it
//! is a fork. The intermediate calls `setsid`, forks the daemon with the C library's `fork` and exits, so
//! the daemon is not a session leader and can never get a controlling terminal. The daemon puts stdio on /dev/null (or the configured log files), sets the umask,
//! locks and writes the pid file, looks up the user and group, chroots, changes directory, drops
//! privileges, and reports "ready" (or the error) to the launcher over the pipe.
//!
//! Under systemd `Type=notify` (`NOTIFY_SOCKET` set), as PID 1 in a container, or with
//! `DAEMON_FOREGROUND=1` in the environment, it does not fork and leaves stdio as it is (but for a `stdout` or
//! `stderr` file the program asked for: keys apply in every mode); the other steps still apply
//! and readiness goes to systemd as `READY=1`.
//! As PID 1 (a container's entry point) the process stays PID 1 as a minimal init that forwards signals,
//! reaps orphans and exits with the program's status, and the program runs as its child: so SIGTERM and
//! SIGINT act on it as on any process (see [`signals()`]).
//!
//! # Stopping and reloading
//!
//! [`signals()`] turns SIGTERM and SIGINT ([`Signal::Terminate`]), SIGHUP ([`Signal::Reload`]) and, on
//! request, SIGUSR1 and SIGUSR2 into events the program reads, blocking or (feature `tokio`) with
//! `Signals::recv`; [`reloaded()`] and [`reload_failed()`] acknowledge a reload. Subscribed before a
//! manual [`ready()`], no signal sent after the launcher's exit can be lost.
//!
//! ```no_run
//! use daemon_runtime::{daemon, Signal};
//!
//! #[daemon(pid_file = "/run/app.pid", ready = "manual")]
//! fn main() -> std::io::Result<()> {
//!     let signals = daemon_runtime::signals()?;
//!     daemon_runtime::ready()?;
//!     for signal in signals {
//!         match signal {
//!             Signal::Reload => daemon_runtime::reloaded()?,
//!             Signal::Terminate(_) => break,
//!             _ => {}
//!         }
//!     }
//!     Ok(()) // the pid file is removed
//! }
//! ```

#![warn(missing_docs)]

mod caps;
mod control;
mod detach;
mod error;
mod events;
mod fds;
mod handshake;
mod hardening;
#[cfg(target_os = "linux")]
mod holder;
#[cfg(target_os = "linux")]
mod init;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod intermediate;
mod lifecycle;
pub mod listen;
mod logs;
pub mod notify;
#[cfg(target_os = "linux")]
mod pidfd;
mod pidfile;
mod privileges;
mod proc_status;
mod ready;
mod sigblock;
mod signals;
mod threads;
mod watchdog;

#[doc(hidden)]
pub mod __private;

/// The README's Rust code, compiled by `cargo test` as doctests (never run: they daemonize).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use control::{args, args_os, Action, Outcome};
pub use error::{Error, Step};
pub use events::{reload_failed, reloaded, signals, Signal, Signals, Term};
pub use hardening::Env;
pub use logs::reopen_logs;
pub use ready::{not_ready, ready, Ready};
pub use watchdog::Watchdog;

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
/// | `ready` | `"auto"` or `"manual"` | `"auto"` | `"manual"`: the launcher waits for [`ready()`] |
/// | `ready_timeout` | integer literal, seconds, at least 1 | `90` | the launcher gives up after this |
/// | `watchdog` | `"auto"` or `"manual"` | `"manual"` | who pings systemd's `WatchdogSec=`: a runtime thread, or the body ([`notify::watchdog()`]) |
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
/// | `reopen_logs_on` | `"SIGUSR1"`, `"SIGUSR2"` or `"SIGHUP"` | none | [`reopen_logs`] on this signal |
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

/// The environment variable that chooses foreground or background at run time, without recompiling, over
/// what the program and the environment say: `DAEMON_FOREGROUND=1` (or `true`, `yes`, `on`) keeps the
/// process attached to the terminal with stdio untouched (but for `stdout`/`stderr` files), for debugging; `DAEMON_FOREGROUND=0` (or
/// `false`, `no`, `off`) forks even when `NOTIFY_SOCKET` is set (a `Type=forking` unit with
/// `NotifyAccess=` or `WatchdogSec=`). Another value is a launch error. As PID 1 the process never
/// daemonizes (the launcher's exit would end the container): it stays PID 1 as a minimal init and the
/// program runs as its child, in the foreground.
///
/// ```
/// assert_eq!(daemon_runtime::FOREGROUND_ENV, "DAEMON_FOREGROUND");
/// ```
pub const FOREGROUND_ENV: &str = "DAEMON_FOREGROUND";

/// How long the launcher waits for the daemon to report ready, unless told otherwise.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Daemonizes at run time, with the same steps and keys as the `#[daemon]` attribute.
///
/// ```no_run
/// use daemon_runtime::Daemon;
///
/// fn main() -> Result<(), daemon_runtime::Error> {
///     let _running = Daemon::new().umask(0o027).workdir("/var/lib/app").start()?;
///     // Only the daemon gets here; keep `_running` alive for as long as the daemon runs.
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Daemon does nothing until start() is called"]
pub struct Daemon {
    umask: u32,
    workdir: PathBuf,
    pid_file: Option<PathBuf>,
    /// Locks, writes and cleans up the pid file: set with `pid_file` by the builder, like `commands`, so
    /// that a daemon without a pid file does not link that code.
    pid_file_ops: Option<&'static pidfile::Ops>,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
    /// Opens the log files: set with `stdout` or `stderr` by the builder, like `commands`, so that a daemon
    /// without log files does not link that code.
    open_log: Option<fds::OpenLog>,
    user: Option<String>,
    group: Option<String>,
    /// Looks the user and group up: set with `user` or `group` by the builder, like `commands`, so that a
    /// daemon that keeps its identity does not link the lookups.
    resolve_identity: Option<privileges::Resolve>,
    chroot: Option<PathBuf>,
    keep_fds: Vec<RawFd>,
    ready: Ready,
    ready_timeout: Duration,
    watchdog: Watchdog,
    /// `Some` when the program chose; `None` to decide at run time.
    foreground: Option<bool>,
    /// Which inherited fds may be closed: `#[daemon]` closes every one, the builder spares owned ones.
    pub(crate) scope: fds::Scope,
    /// The first argument may name a control action (`commands = true`): the code that acts on it. A
    /// function set by the builder call that asks for it, so that a daemon without commands does not
    /// link the control code (about 100 KiB with its schedule and number parsing): a smaller program
    /// starts faster.
    commands: Option<fn(&Daemon)>,
    /// The stop schedule, as given (parsed when used, checked by `start`).
    stop_retry: Option<String>,
    /// Checks the stop schedule: set, like `commands`, by the builder calls that need it.
    check_schedule: Option<control::CheckSchedule>,
    /// How long `reload` waits for the daemon's acknowledgement.
    reload_timeout: Duration,
    /// Kept capabilities and the hardening keys.
    privileges: hardening::Options,
    /// The signal on which the log files are reopened.
    reopen_logs_on: Option<Signal>,
    /// Whether an unknown thread count is taken on the caller's word (`start_unchecked`, `#[daemon]`).
    pub(crate) threads: threads::Policy,
}

impl Default for Daemon {
    fn default() -> Daemon {
        Daemon::new()
    }
}

impl Daemon {
    /// The defaults: umask 0, workdir `/`, stdio on /dev/null, every inherited fd closed, no pid file.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new();
    /// # drop(daemon);
    /// ```
    pub fn new() -> Daemon {
        Daemon {
            umask: 0,
            workdir: PathBuf::from("/"),
            pid_file: None,
            pid_file_ops: None,
            stdout: None,
            stderr: None,
            open_log: None,
            user: None,
            group: None,
            resolve_identity: None,
            chroot: None,
            keep_fds: Vec::new(),
            ready: Ready::Auto,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            watchdog: Watchdog::Manual,
            foreground: None,
            scope: fds::Scope::INHERITED,
            commands: None,
            check_schedule: None,
            stop_retry: None,
            reload_timeout: control::DEFAULT_RELOAD_TIMEOUT,
            privileges: hardening::Options::default(),
            reopen_logs_on: None,
            threads: threads::Policy::CHECK,
        }
    }

    /// The daemon's umask (0..=0o777; default 0).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().umask(0o027);
    /// # drop(daemon);
    /// ```
    pub fn umask(mut self, mask: u32) -> Daemon {
        self.umask = mask;
        self
    }

    /// The daemon's working directory (default `/`), entered after any chroot.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().workdir("/var/lib/app");
    /// # drop(daemon);
    /// ```
    pub fn workdir(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.workdir = path.into();
        self
    }

    /// A pid file: created 0o644 without following a symlink, locked for the daemon's life (a second
    /// daemon fails with "already running (pid N)"), written before the launcher exits, removed when the
    /// [`Running`] handle is dropped. The path must be absolute, as every path of the builder: a relative
    /// one fails [`start`](Daemon::start) with [`Step::Config`].
    ///
    /// ```
    /// use daemon_runtime::{Daemon, Step};
    ///
    /// let daemon = Daemon::new().pid_file("/run/app.pid");
    /// # drop(daemon);
    /// let error = Daemon::new().pid_file("run/app.pid").start().unwrap_err();
    /// assert_eq!(error.step(), Step::Config);
    /// assert_eq!(Daemon::new().pid_file("run/app.pid").status().code(), 4);
    /// ```
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.pid_file = Some(path.into());
        self.pid_file_ops = Some(&pidfile::OPS);
        self
    }

    /// Locks and writes the pid file with this process's pid, if one is configured.
    fn acquire_pid_file(&self) -> Result<Option<pidfile::PidFile>, Error> {
        match (&self.pid_file, self.pid_file_ops) {
            (Some(path), Some(ops)) => (ops.acquire)(path, std::process::id()).map(Some),
            _ => Ok(None),
        }
    }

    /// Removes the pid and lock files a daemon that is gone left, if nobody holds the lock; whether the
    /// lock was free (or there is nothing to remove).
    fn clean_up_pid_file(&self) -> bool {
        match (&self.pid_file, self.pid_file_ops) {
            (Some(path), Some(ops)) => (ops.clean_up)(path),
            _ => true,
        }
    }

    /// Appends the daemon's stdout to this file (created 0o640), instead of /dev/null. It applies in every
    /// mode: in the foreground (systemd's `Type=notify`, PID 1, `DAEMON_FOREGROUND=1`) it replaces the
    /// inherited stdout (the terminal, the journal) too; without it, stdout is /dev/null when the daemon
    /// forks and stays as inherited in the foreground.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().stdout("/var/log/app.out");
    /// # drop(daemon);
    /// ```
    pub fn stdout(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.stdout = Some(path.into());
        self.open_log = Some(fds::OPEN_LOG);
        self
    }

    /// Appends the daemon's stderr (panic messages included) to this file (created 0o640), in every mode,
    /// as [`stdout`](Daemon::stdout) does.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().stderr("/var/log/app.err");
    /// # drop(daemon);
    /// ```
    pub fn stderr(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.stderr = Some(path.into());
        self.open_log = Some(fds::OPEN_LOG);
        self
    }

    /// The user to run as (a name or a numeric id): supplementary groups from initgroups(3), then the
    /// group (the user's primary group unless [`group`](Daemon::group) says otherwise), then the user.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().user("nobody");
    /// # drop(daemon);
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Daemon {
        self.user = Some(user.into());
        self.resolve_identity = Some(privileges::Identity::resolve);
        self
    }

    /// The group to run as (a name or a numeric id). Without a user, the supplementary groups are cleared.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().user("nobody").group("nogroup");
    /// # drop(daemon);
    /// ```
    pub fn group(mut self, group: impl Into<String>) -> Daemon {
        self.group = Some(group.into());
        self.resolve_identity = Some(privileges::Identity::resolve);
        self
    }

    /// Who the daemon becomes: the configured user and group, looked up; without them, itself.
    fn identity(&self) -> Result<privileges::Identity, Error> {
        self.resolve_identity
            .map_or(Ok(privileges::Identity::default()), |resolve| {
                resolve(self.user.as_deref(), self.group.as_deref())
            })
    }

    /// chroot(2) into this directory before changing to the working directory. The user and group are
    /// looked up, and the log and pid files opened, before it.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().chroot("/srv/jail");
    /// # drop(daemon);
    /// ```
    pub fn chroot(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.chroot = Some(path.into());
        self
    }

    /// File descriptors the daemon inherits (above 2), for example a socket bound before daemonizing.
    /// Every other inherited fd is closed.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:7000")?;
    /// let _running = daemon_runtime::Daemon::new().keep_fds([listener.as_raw_fd()]).start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_fds(mut self, fds: impl IntoIterator<Item = RawFd>) -> Daemon {
        self.keep_fds.extend(fds);
        self
    }

    /// When the launcher may exit: [`Ready::Auto`] (default) or [`Ready::Manual`].
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().ready(daemon_runtime::Ready::Manual);
    /// # drop(daemon);
    /// ```
    pub fn ready(mut self, mode: Ready) -> Daemon {
        self.ready = mode;
        self
    }

    /// How long the launcher waits for the daemon to become ready (default 90 s, like systemd's
    /// `TimeoutStartSec`). When it runs out, the daemon's process group is sent SIGTERM (and SIGKILL if it
    /// is still there 2 s later), and the launcher fails.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().ready_timeout(std::time::Duration::from_secs(5));
    /// # drop(daemon);
    /// ```
    pub fn ready_timeout(mut self, timeout: Duration) -> Daemon {
        self.ready_timeout = timeout;
        self
    }

    /// Who pings systemd's watchdog when the unit sets `WatchdogSec=`: [`Watchdog::Manual`] (default: the
    /// program calls [`notify::watchdog()`]) or [`Watchdog::Auto`] (a runtime thread, started in the daemon
    /// after the forks, pings at half the interval). Without `WatchdogSec=` neither sends anything.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().watchdog(daemon_runtime::Watchdog::Auto);
    /// # drop(daemon);
    /// ```
    pub fn watchdog(mut self, mode: Watchdog) -> Daemon {
        self.watchdog = mode;
        self
    }

    /// `true`: stays in the foreground (no fork, stdio kept but for `stdout`/`stderr` files; the other steps
    /// still apply), for example for
    /// a `--foreground` debugging flag. `false`: no preference, the default: decided at run time, which
    /// means foreground under systemd's `NOTIFY_SOCKET` (`Type=notify`) and as PID 1, else a fork. So
    /// passing a command-line flag straight through is always safe: a `Type=notify` unit still gets
    /// `READY=1`. To fork even under `NOTIFY_SOCKET`, say so with [`force_fork`](Daemon::force_fork).
    /// [`FOREGROUND_ENV`] overrides both; as PID 1 the process always stays in the foreground.
    ///
    /// ```
    /// let debugging = std::env::args().any(|a| a == "--foreground");
    /// let daemon = daemon_runtime::Daemon::new().foreground(debugging);
    /// # drop(daemon);
    /// ```
    pub fn foreground(mut self, foreground: bool) -> Daemon {
        self.foreground = foreground.then_some(true);
        self
    }

    /// Forks even when systemd's `NOTIFY_SOCKET` is set: only for a `Type=forking` unit that also sets
    /// `NotifyAccess=` or `WatchdogSec=` (systemd then waits for the launcher to exit, not for `READY=1`).
    /// A `Type=notify` unit never gets `READY=1` from a forked daemon it does not watch: do not use this
    /// there. [`FOREGROUND_ENV`] overrides it; as PID 1 the process still stays in the foreground.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().force_fork();
    /// # drop(daemon);
    /// ```
    pub fn force_fork(mut self) -> Daemon {
        self.foreground = Some(false);
        self
    }

    /// Capabilities the daemon keeps after switching to [`user`](Daemon::user) (Linux), by name as in
    /// capabilities(7), with or without `cap_`: `["net_bind_service"]` lets a daemon running as `nobody`
    /// bind ports below 1024. Its permitted and effective sets then hold exactly these; every other
    /// capability also leaves the bounding set (no setuid program it runs can give one back), and root
    /// still cannot be regained (unless `setuid` is kept, which fails the start). Needs a user to switch to.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().user("nobody").keep_caps(["net_bind_service"]);
    /// # drop(daemon);
    /// ```
    pub fn keep_caps<I, S>(mut self, names: I) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.privileges
            .keep_caps
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// `true`: the kept capabilities are also inheritable and ambient, so programs the daemon executes
    /// keep them too (default `false`: they end at `exec`).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new()
    ///     .user("nobody")
    ///     .keep_caps(["net_bind_service"])
    ///     .ambient_caps(true);
    /// # drop(daemon);
    /// ```
    pub fn ambient_caps(mut self, ambient: bool) -> Daemon {
        self.privileges.ambient_caps = ambient;
        self
    }

    /// `false`: no core dumps (`RLIMIT_CORE` 0) and, on Linux, not dumpable (`PR_SET_DUMPABLE` 0, kept
    /// after the user switch), so the memory of a daemon that held root's secrets never reaches a core
    /// file and no process of the daemon's user can ptrace it. Set before the privileged code runs.
    /// Default `true`: the inherited limit stays.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().core_dumps(false);
    /// # drop(daemon);
    /// ```
    pub fn core_dumps(mut self, allowed: bool) -> Daemon {
        self.privileges.core_dumps = allowed;
        self
    }

    /// `true`: `PR_SET_NO_NEW_PRIVS` (Linux) after the user switch: no program the daemon executes can
    /// gain privileges (setuid bits and file capabilities are ignored). Default `false`.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().no_new_privs(true);
    /// # drop(daemon);
    /// ```
    pub fn no_new_privs(mut self, enabled: bool) -> Daemon {
        self.privileges.no_new_privs = enabled;
        self
    }

    /// `RLIMIT_NOFILE`: the soft and the hard limit on open files, set while still root (raising the hard
    /// limit needs it). `soft` must not exceed `hard`. Default: inherited.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().nofile(65536, 65536);
    /// # drop(daemon);
    /// ```
    pub fn nofile(mut self, soft: u64, hard: u64) -> Daemon {
        self.privileges.nofile = Some((soft, hard));
        self
    }

    /// The nice value (-20 to 19; below 0 needs root, so it is set before the user switch). Default:
    /// inherited.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().nice(10);
    /// # drop(daemon);
    /// ```
    pub fn nice(mut self, nice: i32) -> Daemon {
        self.privileges.nice = Some(nice);
        self
    }

    /// What the daemon's environment keeps: [`Env::Inherit`] (default), [`Env::Clean`] (only
    /// [`Env::ALWAYS_KEPT`]: systemd's `NOTIFY_SOCKET`, `LISTEN_*`, `WATCHDOG_*`, and `PATH`, `LANG`,
    /// `TZ`), or [`Env::keep`] with more names. Cleaned first in the daemon, while it is single-threaded
    /// (a multi-threaded process is refused), so the privileged code sees the clean environment too.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().env(daemon_runtime::Env::Clean);
    /// # drop(daemon);
    /// ```
    pub fn env(mut self, env: Env) -> Daemon {
        self.privileges.env = env;
        self
    }

    /// Reopens the log files ([`reopen_logs`]) whenever this signal arrives: [`Signal::User1`] (SIGUSR1),
    /// [`Signal::User2`] or [`Signal::Reload`] (SIGHUP, what logrotate's `postrotate` usually sends). The
    /// handler is installed before the daemon reports ready, through signal-hook-registry, so the
    /// program's own subscription to the same signal ([`signals()`], `tokio::signal`) still receives it;
    /// the signal no longer ends the process. A failed reopen writes one line to stderr (the old file).
    ///
    /// ```
    /// use daemon_runtime::{Daemon, Signal};
    ///
    /// let daemon = Daemon::new().stderr("/var/log/app/app.log").reopen_logs_on(Signal::User1);
    /// # drop(daemon);
    /// ```
    pub fn reopen_logs_on(mut self, signal: Signal) -> Daemon {
        self.reopen_logs_on = Some(signal);
        self
    }

    /// Code to run as root before the drop: after stdio and the pid file, before chroot and the user
    /// switch, in the daemon, and still in the launcher's working directory (the daemon enters `workdir`
    /// after it): a relative path it opens is taken from there. Its `Ok` value is handed to the program with the [`Running`] handle (for
    /// example a socket bound to port 80 by a daemon that then runs as `nobody`); its `Err` fails the start
    /// like any step (`PROGRAM: the privileged code failed: MESSAGE` on the launcher's terminal), and the
    /// body never runs.
    ///
    /// Whatever it returns keeps what it holds after the drop: return only what the daemon needs (an fd
    /// of a directory outside the chroot, for instance, would be a way out of it).
    ///
    /// It must not leave threads running: with `no_new_privs` or `keep_caps`, which the kernel applies
    /// to one thread, the start fails ([`Step::Threads`]) if another thread runs after it.
    ///
    /// ```no_run
    /// use std::net::TcpListener;
    ///
    /// let (_running, listener) = daemon_runtime::Daemon::new()
    ///     .user("nobody")
    ///     .privileged(|| TcpListener::bind("127.0.0.1:80"))
    ///     .start()?;
    /// // Here the daemon runs as nobody and serves port 80.
    /// # drop(listener);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn privileged<F, T, E>(self, code: F) -> Privileged<F>
    where
        F: FnOnce() -> Result<T, E>,
        E: std::fmt::Display,
    {
        Privileged { daemon: self, code }
    }

    /// Daemonizes.
    ///
    /// In the launching process: exits the process with status 0 once the daemon reports ready, and returns
    /// `Err` if the daemon could not be started (the error the daemon reported, or why the launcher could
    /// not fork); the caller prints it and exits non-zero. In the daemon: returns `Ok(Running)`; keep it
    /// for the daemon's life (dropping it removes the pid file). In foreground mode the process itself
    /// becomes the daemon and gets `Ok(Running)` or the error.
    ///
    /// Call it at the start of `main`, before any thread starts: a multi-threaded process is refused, and so
    /// is one whose threads cannot be counted (see below; [`start_unchecked`](Daemon::start_unchecked)
    /// takes the caller's word there).
    ///
    /// Every inherited fd above 2 is closed, in the launcher too, except those in
    /// [`keep_fds`](Daemon::keep_fds): that is every fd without close-on-exec. Fds the program opened itself
    /// (Rust opens them close-on-exec: a `File`, a `TcpListener`) stay open and keep working in the daemon;
    /// an fd made inheritable on purpose is closed unless kept.
    ///
    /// # Errors
    ///
    /// Only the launcher (or, in the foreground, the process itself) gets an `Err`; a daemon that fails
    /// reports its error over the pipe and exits 1 without returning. [`Error::step`] says what failed:
    ///
    /// - [`Step::Config`]: an invalid value (a umask above 0o777, an empty path, a name with a NUL byte,
    ///   an fd of 0 to 2 to keep, a zero ready timeout) or an unknown [`FOREGROUND_ENV`] value.
    /// - [`Step::Threads`]: the process runs more than one thread, or (before forking) the system cannot
    ///   tell how many it runs.
    /// - [`Step::CloseFds`], [`Step::Signals`], [`Step::Pipe`], [`Step::Fork`]: the launcher's own
    ///   preparation failed; [`Step::Handshake`]: it could not read the daemon's report.
    /// - Any step of the daemon's setup, reported over the pipe and rebuilt with the same text:
    ///   [`Step::Setsid`], [`Step::DevNull`], [`Step::Stdout`], [`Step::Stderr`], [`Step::Stdio`],
    ///   [`Step::Limit`], [`Step::Nice`], [`Step::Environment`], [`Step::User`], [`Step::Group`],
    ///   [`Step::PidFile`], [`Step::LockFile`], [`Step::AlreadyRunning`], [`Step::Privileged`],
    ///   [`Step::Groups`], [`Step::Chroot`], [`Step::Chdir`], [`Step::Capabilities`], [`Step::Setgid`],
    ///   [`Step::Setuid`], [`Step::RegainRoot`], [`Step::Harden`], [`Step::Switch`] (a user or group switch
    ///   that only root could make, refused before any file is touched).
    /// - [`Step::NotReady`]: the daemon exited, or its body failed or panicked, before it was ready;
    ///   [`Step::Timeout`]: it was not ready within [`ready_timeout`](Daemon::ready_timeout) and was stopped.
    /// - [`Step::Notify`] (foreground only): `READY=1` could not be sent to `NOTIFY_SOCKET`.
    ///
    /// # Platform-specific behavior
    ///
    /// - Linux and Android: the thread count and the ignored signals come from procfs; inherited fds are
    ///   closed with `close_range(2)` (Linux 5.9 and later) or by listing `/proc/self/fd`; signals the C
    ///   library reserves for itself (glibc: 32 and 33) are reset with the raw `rt_sigaction` system call
    ///   on `x86_64` and `aarch64`. Without a mounted `/proc` (a chroot), `unshare(CLONE_VM)` tells whether
    ///   another thread runs (it fails with `EINVAL` if so, and changes nothing otherwise).
    /// - Other Unixes (macOS, the BSDs): inherited fds are found by listing `/dev/fd`, or closed by a loop
    ///   up to the hard `RLIMIT_NOFILE`; every signal's disposition is queried with `sigaction(2)`. The
    ///   threads are counted with `proc_pidinfo` on macOS and `sysctl(KERN_PROC_PID)` on FreeBSD; where
    ///   they cannot be counted (the other BSDs, illumos), `start` refuses to fork. Only Linux is tested.
    /// - `NOTIFY_SOCKET` names in the abstract namespace (`@name`) work only on Linux and Android.
    ///
    /// ```no_run
    /// use daemon_runtime::Daemon;
    ///
    /// let _running = match Daemon::new().pid_file("/run/app.pid").start() {
    ///     Ok(running) => running,
    ///     Err(error) => {
    ///         eprintln!("app: {error}");
    ///         std::process::exit(1);
    ///     }
    /// };
    /// ```
    pub fn start(self) -> Result<Running, Error> {
        self.start_with(None)
    }

    fn start_with(self, privileged: detach::Hook<'_>) -> Result<Running, Error> {
        let result = self.daemonize(privileged);
        if let Err(error) = &result {
            // Under systemd, the journal and `systemctl status` say why, in the launcher's words.
            notify::failed(error);
        }
        result
    }

    fn daemonize(self, privileged: detach::Hook<'_>) -> Result<Running, Error> {
        self.check()?;
        if let Some(run_command) = self.commands {
            run_command(&self);
        }
        if self.runs_in_foreground()? {
            detach::foreground(&self, privileged)
        } else {
            detach::background(&self, privileged)
        }
    }

    /// [`start`](Daemon::start), for a process that the caller knows runs a single thread: where the system
    /// cannot count the process's threads, it forks on the caller's word instead of refusing. Where it can,
    /// a second thread is still refused.
    ///
    /// ```no_run
    /// use daemon_runtime::Daemon;
    ///
    /// fn main() -> Result<(), daemon_runtime::Error> {
    ///     // SAFETY: the first statement of main; this program starts no thread before it, and links no
    ///     // library that starts one before main.
    ///     let _running = unsafe { Daemon::new().start_unchecked() }?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Daemon::start), but for an unknown thread count.
    ///
    /// # Safety
    ///
    /// Unless it stays in the foreground, the process must run exactly one thread when this is called. The
    /// child of a fork holds only the calling thread: memory and locks that other threads were using (the
    /// allocator's, stdio's, a library's) stay as the fork found them, which the daemon's code can turn
    /// into a deadlock or undefined behavior.
    pub unsafe fn start_unchecked(mut self) -> Result<Running, Error> {
        // SAFETY: the caller guarantees that the process runs one thread (this function's contract).
        self.threads = unsafe { threads::Policy::trust_caller() };
        self.start()
    }

    /// Foreground as PID 1 (forking would end the container when the launcher exits); else as
    /// [`FOREGROUND_ENV`] says; else as the program said; else under systemd's `NOTIFY_SOCKET`.
    fn runs_in_foreground(&self) -> Result<bool, Error> {
        let forced = match std::env::var_os(FOREGROUND_ENV) {
            None => None,
            Some(value) => match value.to_str().unwrap_or("?").to_ascii_lowercase().as_str() {
                "" => None,
                "1" | "true" | "yes" | "on" => Some(true),
                "0" | "false" | "no" | "off" => Some(false),
                _ => {
                    return Err(Error::new(Step::Config, None, None).with_detail(format!(
                        "{FOREGROUND_ENV}={} is neither 1, true, yes, on (foreground) nor 0, false, no, off (fork)",
                        value.to_string_lossy()
                    )))
                }
            },
        };
        if std::process::id() == 1 {
            return Ok(true);
        }
        Ok(forced
            .or(self.foreground)
            .unwrap_or_else(|| notify::socket().is_some()))
    }

    /// Checks what the attribute checks at compile time, for values that come from the builder.
    fn check(&self) -> Result<(), Error> {
        let invalid =
            |detail: String| Err(Error::new(Step::Config, None, None).with_detail(detail));
        if self.umask > 0o777 {
            return invalid(format!(
                "umask {:#o} is out of range (0 to 0o777)",
                self.umask
            ));
        }
        let paths = [
            ("workdir", Some(&self.workdir)),
            ("pid_file", self.pid_file.as_ref()),
            ("stdout", self.stdout.as_ref()),
            ("stderr", self.stderr.as_ref()),
            ("chroot", self.chroot.as_ref()),
        ];
        for (key, path) in paths {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return invalid(format!("{key} is an empty path"));
            }
            if let Some(path) = path.filter(|p| p.is_relative()) {
                return invalid(format!(
                    "{key} {} is a relative path, which would be taken from the launcher's directory, \
                     not the daemon's: give an absolute path",
                    path.display()
                ));
            }
        }
        for (key, name) in [("user", &self.user), ("group", &self.group)] {
            if name
                .as_ref()
                .is_some_and(|n| n.is_empty() || n.contains('\0'))
            {
                return invalid(format!("{key} must be a name or an id without NUL bytes"));
            }
        }
        if let Some(fd) = self.keep_fds.iter().find(|fd| **fd <= 2) {
            return invalid(format!(
                "fd {fd} cannot be kept: 0, 1 and 2 are always redirected"
            ));
        }
        if self.ready_timeout.is_zero() {
            return invalid("the ready timeout must not be zero".into());
        }
        if self.commands.is_some() && self.pid_file.is_none() {
            return invalid(
                "commands need a pid_file: the actions find the daemon by its lock".into(),
            );
        }
        if let Some(check_schedule) = self.check_schedule {
            check_schedule(self)
                .map_err(|why| Error::new(Step::Config, None, None).with_detail(why))?;
        }
        self.check_privileges()
    }

    fn check_privileges(&self) -> Result<(), Error> {
        let invalid =
            |detail: String| Err(Error::new(Step::Config, None, None).with_detail(detail));
        if !self.privileges.keep_caps.is_empty() {
            caps::CapSet::parse(&self.privileges.keep_caps)?;
        }
        if !self.privileges.keep_caps.is_empty() && self.user.is_none() {
            return invalid("keep_caps needs a user to switch to".into());
        }
        if self.privileges.ambient_caps && self.privileges.keep_caps.is_empty() {
            return invalid("ambient_caps needs keep_caps".into());
        }
        if let Some((soft, hard)) = self.privileges.nofile {
            if soft > hard || soft == 0 {
                return invalid(format!(
                    "nofile soft limit {soft} must be at least 1 and at most the hard limit {hard}"
                ));
            }
        }
        if let Some(signal @ Signal::Terminate(_)) = self.reopen_logs_on {
            return invalid(format!(
                "reopen_logs_on takes SIGHUP, SIGUSR1 or SIGUSR2, not {signal:?}"
            ));
        }
        if let Some(nice) = self.privileges.nice.filter(|n| !(-20..=19).contains(n)) {
            return invalid(format!("nice {nice} is out of range (-20 to 19)"));
        }
        if let Env::Keep(names) = &self.privileges.env {
            if let Some(name) = names
                .iter()
                .find(|n| n.is_empty() || n.contains(['=', '\0']))
            {
                return invalid(format!("env cannot keep {name:?}: not a variable name"));
            }
        }
        Ok(())
    }
}

/// A [`Daemon`] with code to run as root before the drop, made by [`Daemon::privileged`]; [`start`]
/// returns the code's value with the [`Running`] handle.
///
/// [`start`]: Privileged::start
#[must_use = "a Privileged does nothing until start() is called"]
pub struct Privileged<F> {
    daemon: Daemon,
    code: F,
}

impl<F> std::fmt::Debug for Privileged<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privileged")
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Privileged<F>
where
    F: FnOnce() -> Result<T, E>,
    E: std::fmt::Display,
{
    /// Daemonizes as [`Daemon::start`] does, running the privileged code on the way; in the daemon,
    /// returns the [`Running`] handle and the code's value.
    ///
    /// # Errors
    ///
    /// As [`Daemon::start`]; also when the privileged code returns `Err` ([`Step::Privileged`], with the
    /// error's text as the detail).
    ///
    /// ```no_run
    /// let (_running, secret) = daemon_runtime::Daemon::new()
    ///     .user("nobody")
    ///     .privileged(|| std::fs::read_to_string("/etc/app/secret"))
    ///     .start()?;
    /// # drop(secret);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn start(self) -> Result<(Running, T), Error> {
        let mut code = Some(self.code);
        let mut value = None;
        let mut hook = || {
            let code = code.take().ok_or_else(|| {
                Error::new(Step::Privileged, None, None).with_detail("it already ran")
            })?;
            match code() {
                Ok(v) => {
                    value = Some(v);
                    Ok(())
                }
                Err(error) => {
                    Err(Error::new(Step::Privileged, None, None).with_detail(error.to_string()))
                }
            }
        };
        let running = self.daemon.start_with(Some(&mut hook))?;
        let value = value.ok_or_else(|| {
            Error::new(Step::Privileged, None, None).with_detail("it did not run")
        })?;
        Ok((running, value))
    }
}

/// The daemon's handle on what it holds: the locked pid file. Returned by [`Daemon::start`] in the daemon.
///
/// Keep it for as long as the daemon runs; dropping it removes the pid file and releases its lock.
///
/// ```no_run
/// let running = daemon_runtime::Daemon::new().pid_file("/run/app.pid").start()?;
/// assert_eq!(running.pid_file(), Some(std::path::Path::new("/run/app.pid")));
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping Running removes the pid file and releases its lock"]
pub struct Running {
    pid_file: Option<pidfile::PidFile>,
    foreground: bool,
}

impl Running {
    /// The absolute path of the locked pid file, if one was configured.
    ///
    /// ```no_run
    /// let running = daemon_runtime::Daemon::new().start()?;
    /// assert_eq!(running.pid_file(), None);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn pid_file(&self) -> Option<&Path> {
        self.pid_file.as_ref().map(pidfile::PidFile::path)
    }

    /// Whether the process stayed in the foreground (systemd `Type=notify`, PID 1, or forced).
    ///
    /// ```no_run
    /// let running = daemon_runtime::Daemon::new().foreground(true).start()?;
    /// assert!(running.is_foreground());
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn is_foreground(&self) -> bool {
        self.foreground
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Before the fields go: the pid file is removed after the world has heard that we stop.
        lifecycle::exiting();
    }
}
