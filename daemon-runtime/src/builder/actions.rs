//! The `control` feature's part of the builder: its keys (`commands`, `stop_retry`, `reload_timeout`),
//! and the control actions on a running daemon, found by its pid file's lock: the same actions the
//! command words run (`myapp stop`), for a program that parses its own arguments.

use std::time::Duration;

use crate::config::Config;
use crate::control::{self, Outcome};
use crate::running::Running;

use super::Daemon;

impl Daemon {
    /// Whether the program's first argument names an action (`commands = true`): none or `start` starts
    /// the daemon as usual; `stop`, `status`, `restart` and `reload` act on the running daemon and exit with
    /// the LSB code (see [`Outcome`](crate::control::Outcome)); `status --json` prints [`Outcome::to_json`](crate::control::Outcome::to_json); `help` (or `--help`,
    /// `-h`) lists the actions and their exit codes. A first argument within a small edit distance of an
    /// action (`stauts`), not starting with `-`, is refused as a typo (`unknown action `stauts`: did you
    /// mean `status`?`, exit code 2) instead of starting the daemon. Any other first argument is left to
    /// the program; [`control::args`](crate::control::args) and [`control::args_os`](crate::control::args_os) show the arguments without a consumed action word. Needs a
    /// [`pid_file`](Daemon::pid_file).
    ///
    /// With `commands`, the runtime owns the first argument's `help`, `--help` and `-h`: a program with a
    /// command line of its own (clap) leaves `commands` off and calls [`stop`](Daemon::stop),
    /// [`status`](Daemon::status) and [`reload`](Daemon::reload) from its own subcommands, as
    /// `examples/cli.rs` does.
    ///
    /// ```no_run
    /// // `myapp stop` stops the daemon; `myapp` or `myapp start` starts it.
    /// let _running = daemon_runtime::Daemon::new().pid_file("/run/app.pid").commands(true).start()?;
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn commands(mut self, commands: bool) -> Daemon {
        self.config.commands = commands.then_some(control::run as fn(&Config));
        if commands {
            self.config.check_schedule = Some(control::check_schedule);
        }
        self
    }

    /// How [`stop`](Daemon::stop) escalates, as start-stop-daemon's `--retry` (default `TERM/30/KILL/5`):
    /// items separated by `/` are signals (`TERM`, `SIGKILL`, `-9`), timeouts in seconds to wait for the exit
    /// (`30`, `0.5`) and at most one `forever`, after which the rest of the schedule repeats until the
    /// daemon is gone. A lone timeout `T` means `TERM/T/KILL/T`. An invalid schedule fails
    /// [`start`](Daemon::start) with a configuration error, and `stop` with exit code 2.
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().pid_file("/run/app.pid").stop_retry("TERM/10/KILL/5");
    /// # drop(daemon);
    /// ```
    pub fn stop_retry(mut self, schedule: impl Into<String>) -> Daemon {
        self.config.stop_retry = Some(schedule.into());
        self.config.check_schedule = Some(control::check_schedule);
        self
    }

    /// How long [`reload`](Daemon::reload) waits for the daemon to acknowledge a reload (default 90 s).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().reload_timeout(std::time::Duration::from_secs(10));
    /// # drop(daemon);
    /// ```
    pub fn reload_timeout(mut self, timeout: Duration) -> Daemon {
        self.config.reload_timeout = timeout;
        self
    }

    /// Whether the daemon configured with this pid file runs, decided by the kernel: the process that holds
    /// the lock file's `flock` (found from the pids the daemon's files name, verified through that
    /// process's own descriptors), never a pid merely read from the pid file. Exit codes: 0 running
    /// (`running (pid N)`, with [`Outcome::pid`](crate::control::Outcome::pid), [`uptime`](crate::control::Outcome::uptime) and [`user`](crate::control::Outcome::user)),
    /// 1 not running but the pid file exists, 3 not running, 4 cannot tell (the message says why).
    ///
    /// Works for any user who can reach the files: it opens nothing for reading (the lock file is only
    /// looked at with `O_PATH`), so a non-root user can ask about a root daemon. A pid file or lock file that
    /// is a symbolic link, not a regular file, group- or world-writable, or owned by someone other than
    /// root or the caller, is refused (exit 4).
    ///
    /// ```no_run
    /// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").status();
    /// if let Some(pid) = outcome.pid() {
    ///     println!("running as pid {pid}");
    /// }
    /// ```
    pub fn status(&self) -> Outcome {
        control::status(&self.config)
    }

    /// Stops the daemon that holds the lock: sends the signals of the [`stop_retry`](Daemon::stop_retry)
    /// schedule through a pidfd, and waits (poll(2) on the pidfd, no sleeping) until the process has exited
    /// and the lock is released. Exit codes: 0 stopped or not running (LSB: stopping a stopped service
    /// succeeds), 1 still running after the whole schedule or refused (the message says why), 4 permission
    /// denied.
    ///
    /// Only the lock's holder is signalled: a pid file naming a live process that holds no lock is never
    /// acted on, and the holder is checked again after its pidfd is opened, so a pid recycled in between is
    /// never signalled.
    ///
    /// ```no_run
    /// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").stop_retry("TERM/10/KILL/5").stop();
    /// outcome.exit();
    /// ```
    pub fn stop(&self) -> Outcome {
        control::stop(&self.config)
    }

    /// Asks the daemon to reload: SIGHUP to the lock's holder through a pidfd. If the daemon uses the signal
    /// API's acknowledgement (it subscribed to signal events, and answers a reload with `reloaded()` or
    /// `reload_failed(reason)`), waits for that answer, up to [`reload_timeout`](Daemon::reload_timeout), so
    /// that the exit code says whether the reload worked, as systemd's `ExecReload=` expects; otherwise says
    /// the daemon was only signalled. Exit codes: 0 reloaded (or signalled), 1 the reload failed (with the
    /// daemon's own message) or was not answered in time, 3 refused because the daemon does not handle
    /// SIGHUP (its default action would kill it) or ignores it, 4 permission denied, 7 not running.
    ///
    /// ```no_run
    /// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").reload();
    /// outcome.exit();
    /// ```
    pub fn reload(&self) -> Outcome {
        control::reload(&self.config)
    }

    /// Asks the daemon to reopen its log files (after logrotate moved them), and waits for its answer:
    /// sends the configured [`reopen_logs_on`](Daemon::reopen_logs_on) signal to the lock's holder through
    /// a pidfd, as [`reload`](Daemon::reload) sends SIGHUP, and waits up to
    /// [`reload_timeout`](Daemon::reload_timeout) for the daemon to say how the reopen went. So logrotate's
    /// `postrotate` never signals a pid read from a file, and rotation need not be a configuration
    /// reload (with `reopen_logs_on = "SIGUSR1"`). Exit codes: 0 reopened, 1 the reopen failed (with the
    /// daemon's reason, such as `cannot reopen log file /var/log/app/app.log: Permission denied (os error
    /// 13)`) or was not answered in time, 3 `reopen_logs_on` is not configured (or the daemon does not
    /// reopen on that signal), 4 permission denied, 7 not running. stdout or stderr on the journal or
    /// syslog is left alone and said so (a socket has nothing to rotate); with no log file at all, it exits
    /// 0 at once: `nothing to reopen: stderr goes to the journal, with no file to rotate`.
    ///
    /// ```no_run
    /// use daemon_runtime::{Daemon, Signal};
    ///
    /// let daemon = Daemon::new().pid_file("/run/app.pid").reopen_logs_on(Signal::User1);
    /// daemon.reopen_logs().exit();
    /// ```
    pub fn reopen_logs(&self) -> Outcome {
        control::reopen_logs(&self.config)
    }

    /// Upgrades the running daemon in place, with no connection refused: starts this program's
    /// executable as it is on disk now, with the running daemon's own arguments, hands it the running
    /// daemon's listening sockets and lock while the old daemon serves on, and, once the new daemon is
    /// ready, writes its pid into the pid file and lets the old one go (SIGTERM, which its signal API
    /// reads as [`Term::Upgraded`](crate::signal::Term::Upgraded); the [`stop_retry`](Daemon::stop_retry)
    /// schedule bounds its drain). A new daemon that fails before it is ready (its start failed, it
    /// panicked, it missed the ready timeout) is ended, and the old one never learns of it.
    ///
    /// The running daemon's arguments are read from /proc only where it runs as this process's own user:
    /// a daemon that dropped its privileges could have rewritten them, and root would then start the new
    /// daemon with arguments of its user's choosing. Otherwise give them: [`upgrade_with`](Daemon::upgrade_with).
    ///
    /// The sockets handed over are those systemd passed, those an earlier upgrade handed over, and those
    /// the program registered with [`listen::share`](crate::listen::share); the new daemon gets them from
    /// [`listen::tcp_listener`](crate::listen::tcp_listener) by name. Exit codes: 0 upgraded, 1 the upgrade
    /// failed (the old daemon serves on; the message says why) or the old daemon did not exit within the
    /// schedule, 2 its arguments must be given, 4 not allowed (root, or the user who started the daemon,
    /// may upgrade it), 7 not running. Linux 5.6 or later (`pidfd_getfd`). See the
    /// [upgrade guide](crate::guide::upgrade).
    ///
    /// ```no_run
    /// daemon_runtime::Daemon::new().pid_file("/run/app.pid").upgrade().exit();
    /// ```
    pub fn upgrade(&self) -> Outcome {
        control::upgrade(&self.config, None)
    }

    /// [`upgrade`](Daemon::upgrade), starting the new daemon with `args` (which may be empty) instead of
    /// the running daemon's own.
    ///
    /// ```no_run
    /// let daemon = daemon_runtime::Daemon::new().pid_file("/run/app.pid");
    /// daemon.upgrade_with(["--config", "/etc/app/new.toml"]).exit();
    /// ```
    pub fn upgrade_with<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        control::upgrade(
            &self.config,
            Some(args.into_iter().map(Into::into).collect()),
        )
    }

    /// The service manager's file for this program, derived from its configuration: a systemd unit
    /// (`Type=notify`, the executable's absolute path, reload and stop through the program's own actions
    /// with [`commands`](Daemon::commands), the timeouts, the watchdog, the hardening the keys imply) or a
    /// launchd property list. Each key is applied once, by the service manager or by the runtime, and a
    /// comment above it says which; the ones the manager applies are named in the file's
    /// `DAEMON_KEYS_APPLIED`, and the runtime checks them at start instead of applying them. The text is
    /// [`Outcome::message`](crate::control::Outcome::message); [`exit`](crate::control::Outcome::exit)
    /// prints it. Exit codes: 0, 1 when the executable or a path cannot be named in the file. See the
    /// [guide](crate::guide::systemd).
    ///
    /// ```no_run
    /// use daemon_runtime::control::ServiceManager;
    ///
    /// let daemon = daemon_runtime::Daemon::new().pid_file("/run/app/app.pid").user("app");
    /// std::fs::write("app.service", daemon.unit(ServiceManager::Systemd).message())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unit(&self, manager: control::ServiceManager) -> Outcome {
        control::unit(&self.config, manager)
    }

    /// Writes the systemd unit ([`unit`](Daemon::unit)) to `/etc/systemd/system/NAME.service` (`NAME`:
    /// the executable's file name), runs `systemctl daemon-reload`, and says how to start it (`systemctl
    /// enable --now NAME.service`). An existing file that differs is replaced only with `force`; one that
    /// is not a regular root-owned file (a symbolic link: a masked or linked unit) never is. Without
    /// `force`, an executable another user than root could replace (the file, or a directory above it,
    /// not root's or writable by others) is refused: the unit would run it at every boot. Exit codes: 0
    /// installed (or there already), 1 refused or failed (the message says why), 3 systemd is not PID 1
    /// here, 4 not root.
    ///
    /// ```no_run
    /// daemon_runtime::Daemon::new().pid_file("/run/app/app.pid").install(false).exit();
    /// ```
    pub fn install(&self, force: bool) -> Outcome {
        control::install(&self.config, force)
    }

    /// Stops and disables the unit [`install`](Daemon::install) wrote (`systemctl disable --now`), removes
    /// its file and reloads systemd; only a file that is exactly what `install` writes for this program
    /// is touched. Exit codes: 0 removed (or not installed), 1 refused or failed, 3 systemd is not PID 1
    /// here, 4 not root.
    ///
    /// ```no_run
    /// daemon_runtime::Daemon::new().pid_file("/run/app/app.pid").uninstall().exit();
    /// ```
    pub fn uninstall(&self) -> Outcome {
        control::uninstall(&self.config)
    }

    /// Stops the running daemon (as [`stop`](Daemon::stop)), then starts a new one (as
    /// [`start`](Daemon::start)): the launcher exits 0 only once the new daemon is ready. Returns
    /// `Ok(Running)` in the new daemon.
    ///
    /// # Errors
    ///
    /// The stop's outcome when the old daemon could not be stopped; an outcome with code 1 and the start's
    /// error when the new one could not start.
    ///
    /// ```no_run
    /// let running = match daemon_runtime::Daemon::new().pid_file("/run/app.pid").restart() {
    ///     Ok(running) => running,
    ///     Err(outcome) => outcome.exit(),
    /// };
    /// # drop(running);
    /// ```
    pub fn restart(mut self) -> Result<Running, Outcome> {
        // In a process `upgrade` started, the daemon to stop is the one it takes over from.
        if !crate::handshake::upgrade_requested() {
            let stopped = self.stop();
            if !stopped.success() {
                return Err(stopped.into_restart());
            }
        }
        // The action word was handled here; start() must not handle it again.
        self.config.commands = None;
        self.start()
            .map_err(|error| Outcome::failed_restart(error.to_string()))
    }
}
