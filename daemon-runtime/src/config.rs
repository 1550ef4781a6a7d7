//! What the builder produces and the phases read: every key's value, checked (see [`Config::check`]).
//!
//! The functions a key needs are kept with it (`pid_file_ops`, `open_log`, `connect_sinks`,
//! `resolve_identity`, `commands`), set by the builder method that takes the key: a daemon that does not
//! use a key does not link its code, so a smaller program starts faster.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Step};
use crate::hardening::Env;
use crate::readiness::Readiness;
use crate::sink::output::Output;
use crate::systemd::watchdog::Watchdog;

/// How long the launcher waits for the daemon to report ready, unless told otherwise.
pub(crate) const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `reload` waits for the daemon's answer unless told otherwise (systemd's default
/// `TimeoutSec=`).
pub(crate) const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether the stop schedule parses: the check `start` makes, set with the keys that use the schedule.
pub(crate) type CheckSchedule = fn(&Config) -> Result<(), String>;

/// A daemon's configuration.
// One field per key, as the attribute writes them: several keys are booleans.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) umask: u32,
    pub(crate) workdir: PathBuf,
    pub(crate) pid_file: Option<PathBuf>,
    /// Locks, writes and cleans up the pid file.
    pub(crate) pid_file_ops: Option<&'static crate::pidfile::Ops>,
    pub(crate) stdout: Option<Output>,
    pub(crate) stderr: Option<Output>,
    /// Opens the log files.
    pub(crate) open_log: Option<crate::logfile::OpenLog>,
    /// Connects stdout and stderr to the journal or syslog (set with a sink).
    pub(crate) connect_sinks: Option<crate::sink::Connect>,
    pub(crate) user: Option<String>,
    pub(crate) group: Option<String>,
    /// Looks the user and group up.
    pub(crate) resolve_identity: Option<crate::identity::Resolve>,
    pub(crate) chroot: Option<PathBuf>,
    pub(crate) keep_fds: Vec<RawFd>,
    pub(crate) readiness: Readiness,
    pub(crate) ready_timeout: Duration,
    pub(crate) watchdog: Watchdog,
    /// `Some` when the program chose; `None` to decide at run time.
    pub(crate) foreground: Option<bool>,
    /// The first argument may name a control action (`commands = true`): the code that acts on it
    /// (returns to start the daemon, exits the process otherwise).
    pub(crate) commands: Option<fn(&Config)>,
    /// Whether the stop schedule parses, checked by `start`: set with `commands` and `stop_retry`.
    pub(crate) check_schedule: Option<CheckSchedule>,
    /// The stop schedule, as given (parsed when used, checked by `start`).
    #[cfg_attr(not(feature = "control"), allow(dead_code))] // read by the control actions
    pub(crate) stop_retry: Option<String>,
    /// How long `reload` and `reopen-logs` wait for the daemon's answer.
    #[cfg_attr(not(feature = "control"), allow(dead_code))] // read by the control actions
    pub(crate) reload_timeout: Duration,
    pub(crate) keep_caps: Vec<String>,
    pub(crate) ambient_caps: bool,
    pub(crate) core_dumps: bool,
    pub(crate) no_new_privs: bool,
    pub(crate) nofile: Option<(u64, u64)>,
    pub(crate) nice: Option<i32>,
    pub(crate) env: Env,
    /// The signal number on which the log files are reopened.
    pub(crate) reopen_logs_on: Option<libc::c_int>,
    /// The program runs code as root before the drop (`privileged`): the service-manager files then
    /// leave the user switch to the runtime.
    pub(crate) privileged: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            umask: 0,
            workdir: PathBuf::from("/"),
            pid_file: None,
            pid_file_ops: None,
            stdout: None,
            stderr: None,
            open_log: None,
            connect_sinks: None,
            user: None,
            group: None,
            resolve_identity: None,
            chroot: None,
            keep_fds: Vec::new(),
            readiness: Readiness::Auto,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            watchdog: Watchdog::Manual,
            foreground: None,
            commands: None,
            check_schedule: None,
            stop_retry: None,
            reload_timeout: DEFAULT_RELOAD_TIMEOUT,
            keep_caps: Vec::new(),
            ambient_caps: false,
            core_dumps: true,
            no_new_privs: false,
            nofile: None,
            nice: None,
            env: Env::Inherit,
            reopen_logs_on: None,
            privileged: false,
        }
    }
}

impl Config {
    /// Keeps the code `output` needs (the log files' opener for a file, the connector for a sink), so
    /// that a program links only what its keys use.
    pub(crate) fn link(&mut self, output: &Output) {
        if output.file().is_some() {
            self.open_log = Some(crate::logfile::OPEN_LOG);
        } else {
            self.connect_sinks = Some(crate::sink::CONNECT);
        }
    }

    /// Who the daemon becomes: the configured user and group, looked up; without them, itself.
    pub(crate) fn identity(&self) -> Result<crate::identity::Identity, Error> {
        self.resolve_identity
            .map_or(Ok(crate::identity::Identity::default()), |resolve| {
                resolve(self.user.as_deref(), self.group.as_deref())
            })
    }

    /// Locks and writes the pid file with this process's pid, if one is configured.
    pub(crate) fn acquire_pid_file(&self) -> Result<Option<crate::pidfile::PidFile>, Error> {
        match (&self.pid_file, self.pid_file_ops) {
            (Some(path), Some(ops)) => (ops.acquire)(path, std::process::id()).map(Some),
            _ => Ok(None),
        }
    }

    /// Takes over the lock the daemon being upgraded (`predecessor`) handed over, for the configured pid
    /// file; an upgrade needs one.
    pub(crate) fn adopt_pid_file(
        &self,
        lock: std::os::fd::OwnedFd,
        predecessor: u32,
    ) -> Result<crate::pidfile::PidFile, Error> {
        match (&self.pid_file, self.pid_file_ops) {
            (Some(path), Some(ops)) => (ops.adopt)(path, lock, predecessor),
            _ => Err(Error::new(Step::Config, None, None).with_detail(
                "an upgrade hands over the lock of a pid file, and none is configured",
            )),
        }
    }

    /// Removes the pid and lock files a daemon that is gone left, if nobody holds the lock; whether the
    /// lock was free (or there is nothing to remove).
    pub(crate) fn clean_up_pid_file(&self) -> bool {
        match (&self.pid_file, self.pid_file_ops) {
            (Some(path), Some(ops)) => (ops.clean_up)(path),
            _ => true,
        }
    }

    /// Checks what the attribute checks at compile time, for values that come from the builder.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let invalid =
            |detail: String| Err(Error::new(Step::Config, None, None).with_detail(detail));
        if self.umask > 0o777 {
            return invalid(format!(
                "umask {:#o} is out of range (0 to 0o777)",
                self.umask
            ));
        }
        for (key, output) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(Err(why)) = output.as_ref().map(|o| o.check(key)) {
                return invalid(why);
            }
        }
        let paths = [
            ("workdir", Some(&self.workdir)),
            ("pid_file", self.pid_file.as_ref()),
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
        if !self.keep_caps.is_empty() {
            crate::caps::CapSet::parse(&self.keep_caps)?;
        }
        if !self.keep_caps.is_empty() && self.user.is_none() {
            return invalid("keep_caps needs a user to switch to".into());
        }
        if self.ambient_caps && self.keep_caps.is_empty() {
            return invalid("ambient_caps needs keep_caps".into());
        }
        if let Some((soft, hard)) = self.nofile
            && (soft > hard || soft == 0)
        {
            return invalid(format!(
                "nofile soft limit {soft} must be at least 1 and at most the hard limit {hard}"
            ));
        }
        if let Some(signal) = self
            .reopen_logs_on
            .filter(|s| ![libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2].contains(s))
        {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string());
            return invalid(format!(
                "reopen_logs_on takes SIGHUP, SIGUSR1 or SIGUSR2, not {name}"
            ));
        }
        if let Some(nice) = self.nice.filter(|n| !(-20..=19).contains(n)) {
            return invalid(format!("nice {nice} is out of range (-20 to 19)"));
        }
        if let Env::Keep(names) = &self.env
            && let Some(name) = names
                .iter()
                .find(|n| n.is_empty() || n.contains(['=', '\0']))
        {
            return invalid(format!("env cannot keep {name:?}: not a variable name"));
        }
        Ok(())
    }
}
