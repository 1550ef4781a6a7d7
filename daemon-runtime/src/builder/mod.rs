//! [`Daemon`]: one builder method per key (the attribute's keys expand to these calls) and the start;
//! the `control` feature's keys and the control actions on a running daemon in `actions`, the privileged
//! code's builder in `privileged`. What the methods do is in the phases.

#[cfg(feature = "control")]
mod actions;
mod privileged;

pub use privileged::Privileged;

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
#[cfg(doc)]
use crate::error::Step;
use crate::hardening::Env;
use crate::launch::Entry;
use crate::readiness::Readiness;
use crate::running::Running;
use crate::signal::Signal;
use crate::sink::output::Output;
use crate::systemd::watchdog::Watchdog;

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
#[derive(Clone, Debug, Default)]
#[must_use = "a Daemon does nothing until start() is called"]
pub struct Daemon {
    pub(crate) config: Config,
}

impl Daemon {
    /// The defaults: umask 0, workdir `/`, stdio on /dev/null, every inherited fd closed, no pid file.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new();
    /// # drop(daemon);
    /// ```
    pub fn new() -> Daemon {
        Daemon::default()
    }

    /// The daemon's umask (0..=0o777; default 0).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().umask(0o027);
    /// # drop(daemon);
    /// ```
    pub fn umask(mut self, mask: u32) -> Daemon {
        self.config.umask = mask;
        self
    }

    /// The daemon's working directory (default `/`), entered after any chroot.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().workdir("/var/lib/app");
    /// # drop(daemon);
    /// ```
    pub fn workdir(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.config.workdir = path.into();
        self
    }

    /// The absolute path of the locked pid file, if one was configured.
    ///
    /// ```no_run
    /// let running = daemon_runtime::Daemon::new().start()?;
    /// assert_eq!(running.pid_file(), None);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.config.pid_file = Some(path.into());
        self.config.pid_file_ops = Some(&crate::pidfile::OPS);
        self
    }

    /// Where the daemon's stdout goes, instead of /dev/null: a file (appended to, created 0o640), the
    /// journal or syslog ([`Output`]; a string names a sink as the attribute does: `"journal"`,
    /// `"syslog"`, `"syslog:local0"`, else it is a path). It applies in every mode: in the foreground
    /// (systemd's `Type=notify`, PID 1, `DAEMON_FOREGROUND=1`) it replaces the inherited stdout (the
    /// terminal) too, but for `"journal"` when stdout is on the journal already (`JOURNAL_STREAM`);
    /// without it, stdout is /dev/null when the daemon forks and stays as inherited in the foreground.
    /// The guide's [journal and syslog](crate::guide::journal_syslog) chapter says what each sink does.
    ///
    /// ```
    /// use daemon_runtime::{Daemon, logs::{Facility, Output}};
    ///
    /// let to_file = Daemon::new().stdout("/var/log/app.out");
    /// let to_journal = Daemon::new().stdout("journal");
    /// let to_syslog = Daemon::new().stdout(Output::Syslog(Facility::Local0));
    /// # drop((to_file, to_journal, to_syslog));
    /// ```
    pub fn stdout(mut self, output: impl Into<Output>) -> Daemon {
        let output = output.into();
        self.config.link(&output);
        self.config.stdout = Some(output);
        self
    }

    /// Where the daemon's stderr goes (panic messages included), in every mode, as
    /// [`stdout`](Daemon::stdout) says. On the journal and syslog, a stderr line without a level prefix
    /// has priority `err`, a stdout line `info`.
    ///
    /// ```
    /// let to_file = daemon_runtime::Daemon::new().stderr("/var/log/app.err");
    /// let to_journal = daemon_runtime::Daemon::new().stderr("journal");
    /// # drop((to_file, to_journal));
    /// ```
    pub fn stderr(mut self, output: impl Into<Output>) -> Daemon {
        let output = output.into();
        self.config.link(&output);
        self.config.stderr = Some(output);
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
        self.config.user = Some(user.into());
        self.config.resolve_identity = Some(crate::identity::Identity::resolve);
        self
    }

    /// The group to run as (a name or a numeric id). Without a user, the supplementary groups are cleared.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().user("nobody").group("nogroup");
    /// # drop(daemon);
    /// ```
    pub fn group(mut self, group: impl Into<String>) -> Daemon {
        self.config.group = Some(group.into());
        self.config.resolve_identity = Some(crate::identity::Identity::resolve);
        self
    }

    /// chroot(2) into this directory before changing to the working directory. The user and group are
    /// looked up, and the log and pid files opened, before it.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().chroot("/srv/jail");
    /// # drop(daemon);
    /// ```
    pub fn chroot(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.config.chroot = Some(path.into());
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
        self.config.keep_fds.extend(fds);
        self
    }

    /// When the launcher may exit: [`Readiness::Auto`] (default) or [`Readiness::Manual`], which waits for
    /// [`ready()`](crate::ready).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().readiness(daemon_runtime::Readiness::Manual);
    /// # drop(daemon);
    /// ```
    pub fn readiness(mut self, mode: Readiness) -> Daemon {
        self.config.readiness = mode;
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
        self.config.ready_timeout = timeout;
        self
    }

    /// Who pings systemd's watchdog when the unit sets `WatchdogSec=`: [`Watchdog::Manual`] (default: the
    /// program calls [`notify::ping_watchdog()`](crate::notify::ping_watchdog)) or [`Watchdog::Auto`] (a runtime thread, started in the daemon
    /// after the forks, pings at half the interval). Without `WatchdogSec=` neither sends anything.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().watchdog(daemon_runtime::Watchdog::Auto);
    /// # drop(daemon);
    /// ```
    pub fn watchdog(mut self, mode: Watchdog) -> Daemon {
        self.config.watchdog = mode;
        self
    }

    /// `true`: stays in the foreground (no fork, stdio kept but for `stdout`/`stderr` files; the other steps
    /// still apply), for example for
    /// a `--foreground` debugging flag. `false`: no preference, the default: decided at run time, which
    /// means foreground under systemd's `NOTIFY_SOCKET` (`Type=notify`) and as PID 1, else a fork. So
    /// passing a command-line flag straight through is always safe: a `Type=notify` unit still gets
    /// `READY=1`. To fork even under `NOTIFY_SOCKET`, say so with [`force_fork`](Daemon::force_fork).
    /// [`FOREGROUND_ENV`](crate::FOREGROUND_ENV) overrides both; as PID 1 the process always stays in the foreground.
    ///
    /// ```
    /// let debugging = std::env::args().any(|a| a == "--foreground");
    /// let daemon = daemon_runtime::Daemon::new().foreground(debugging);
    /// # drop(daemon);
    /// ```
    pub fn foreground(mut self, foreground: bool) -> Daemon {
        self.config.foreground = foreground.then_some(true);
        self
    }

    /// Forks even when systemd's `NOTIFY_SOCKET` is set: only for a `Type=forking` unit that also sets
    /// `NotifyAccess=` or `WatchdogSec=` (systemd then waits for the launcher to exit, not for `READY=1`).
    /// A `Type=notify` unit never gets `READY=1` from a forked daemon it does not watch: do not use this
    /// there. [`FOREGROUND_ENV`](crate::FOREGROUND_ENV) overrides it; as PID 1 the process still stays in the foreground.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().force_fork();
    /// # drop(daemon);
    /// ```
    pub fn force_fork(mut self) -> Daemon {
        self.config.foreground = Some(false);
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
        self.config
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
        self.config.ambient_caps = ambient;
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
        self.config.core_dumps = allowed;
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
        self.config.no_new_privs = enabled;
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
        self.config.nofile = Some((soft, hard));
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
        self.config.nice = Some(nice);
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
        self.config.env = env;
        self
    }

    /// Reopens the log files ([`logs::reopen`](crate::logs::reopen)) whenever this signal arrives: [`Signal::User1`](crate::Signal::User1) (SIGUSR1),
    /// [`Signal::User2`](crate::Signal::User2) or [`Signal::Reload`](crate::Signal::Reload) (SIGHUP, what logrotate's `postrotate` usually sends). The
    /// handler is installed before the daemon reports ready, through signal-hook-registry, so the
    /// program's own subscription to the same signal ([`signals()`](crate::signals), `tokio::signal`) still receives it;
    /// the signal no longer ends the process. A failed reopen writes one line to stderr (the old file).
    ///
    /// ```
    /// use daemon_runtime::{Daemon, Signal};
    ///
    /// let daemon = Daemon::new().stderr("/var/log/app/app.log").reopen_logs_on(Signal::User1);
    /// # drop(daemon);
    /// ```
    pub fn reopen_logs_on(mut self, signal: Signal) -> Daemon {
        self.config.reopen_logs_on = Some(signal.number());
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
    pub fn privileged<F, T, E>(mut self, code: F) -> Privileged<F>
    where
        F: FnOnce() -> Result<T, E>,
        E: std::fmt::Display,
    {
        self.config.privileged = true;
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
    ///   an fd of 0 to 2 to keep, a zero ready timeout) or an unknown [`FOREGROUND_ENV`](crate::FOREGROUND_ENV) value.
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
        self.start_at(Entry::default())
    }

    /// [`start`](Daemon::start), with what the program's entry promises (the macro's glue, and
    /// `start_unchecked`).
    pub(crate) fn start_at(self, entry: Entry) -> Result<Running, Error> {
        crate::start::start(&self.config, entry, None)
    }
}
