//! Acting on a running daemon from outside: `status`, `stop`, `restart`, `reload`, `reopen-logs`, as
//! [`Daemon`](crate::Daemon) methods or, with `commands = true`, the program's first argument; and the
//! service manager's file for the program: `unit`, `install`, `uninstall` ([guide](crate::guide::systemd)).
//!
//! Whether a daemon runs, and which process it is, is decided by the kernel, never by a pid read from a
//! file: the daemon holds an exclusive `flock` on its lock file for its whole life. The holder is found
//! from the pids the daemon's own files name and verified through its own descriptors, then pinned with a
//! pidfd and checked again (it still holds the lock, it runs as the daemon's user), so neither a stale
//! pid file, a recycled pid nor a planted file can turn a `stop` against an unrelated process. Waiting is
//! event-driven: poll(2) on the pidfd for the exit, inotify on the lock file for a reload's answer.
//!
//! Exit codes follow the LSB init-script conventions (see [`Outcome`]).

mod action;
mod args;
#[cfg(target_os = "linux")]
mod client;
#[cfg(not(target_os = "linux"))]
#[path = "unsupported.rs"]
mod client;
mod command;
#[cfg(target_os = "linux")]
mod find;
mod outcome;
mod schedule;
mod service;
#[cfg(target_os = "linux")]
mod upgrade;
#[cfg(target_os = "linux")]
mod watch;

use std::path::PathBuf;

pub use action::Action;
pub use args::{args, args_os};
pub(crate) use command::run;
pub use outcome::Outcome;
pub(crate) use schedule::check as check_schedule;
pub(crate) use service::{install, uninstall, unit};

pub use crate::unit::ServiceManager;

use crate::config::Config;

/// The files an action looks at, and who besides root and the caller may own them.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Target {
    pid_file: PathBuf,
    /// The uid of the configured `user` (the daemon gives it the lock file), if any.
    user: Option<u32>,
}

/// What the actions act on: the configured pid file (absolute), and the configured user's uid (who may own
/// the files besides root and the caller); or the outcome that says there is no usable pid file.
fn target(config: &Config, action: Action) -> Result<Target, Outcome> {
    let Some(path) = &config.pid_file else {
        return Err(Outcome::new(
            action,
            6,
            format!("cannot {action}: no pid file is configured"),
        ));
    };
    if path.is_relative() {
        // LSB: 4 for status ("unknown"), 2 ("invalid argument") for the others.
        return Err(Outcome::new(
            action,
            if action == Action::Status { 4 } else { 2 },
            format!(
                "cannot {action}: pid file {} is a relative path (give an absolute path)",
                path.display()
            ),
        ));
    }
    let user = config
        .user
        .as_deref()
        .and_then(|user| match user.parse::<u32>() {
            Ok(uid) => Some(uid),
            Err(_) => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
        });
    Ok(Target {
        pid_file: path.clone(),
        user,
    })
}

/// `status`: see [`Daemon::status`](crate::Daemon::status).
pub(crate) fn status(config: &Config) -> Outcome {
    match target(config, Action::Status) {
        Ok(target) => client::status(&target),
        Err(outcome) => outcome,
    }
}

/// `stop`: see [`Daemon::stop`](crate::Daemon::stop).
pub(crate) fn stop(config: &Config) -> Outcome {
    if crate::handshake::upgrade_requested() {
        return Outcome::new(
            Action::Stop,
            1,
            format!(
                "refusing to stop: `upgrade` started this process to take over from the daemon ({} is set)",
                crate::handshake::UPGRADE_ENV
            ),
        );
    }
    let schedule = match schedule::of(config) {
        Ok(schedule) => schedule,
        Err(message) => return Outcome::new(Action::Stop, 2, message),
    };
    match target(config, Action::Stop) {
        Ok(target) => client::stop(&target, &schedule),
        Err(outcome) => outcome,
    }
}

/// `reload`: see [`Daemon::reload`](crate::Daemon::reload).
pub(crate) fn reload(config: &Config) -> Outcome {
    match target(config, Action::Reload) {
        Ok(target) => client::reload(&target, config.reload_timeout),
        Err(outcome) => outcome,
    }
}

/// `reopen-logs`: see [`Daemon::reopen_logs`](crate::Daemon::reopen_logs).
pub(crate) fn reopen_logs(config: &Config) -> Outcome {
    // A socket has nothing to rotate: the journal and syslog are left alone, and said to be.
    let outputs = [("stdout", &config.stdout), ("stderr", &config.stderr)];
    let sinks: Vec<String> = outputs
        .iter()
        .filter_map(|(name, output)| {
            let output = output.as_ref().filter(|o| o.file().is_none())?;
            Some(format!("{name} goes to {}", output.describe()))
        })
        .collect();
    let files = outputs
        .iter()
        .any(|(_, output)| output.as_ref().is_some_and(|o| o.file().is_some()));
    if !sinks.is_empty() && !files {
        return Outcome::new(
            Action::ReopenLogs,
            0,
            format!(
                "nothing to reopen: {}, with no file to rotate",
                sinks.join(" and ")
            ),
        );
    }
    let mut outcome = reopen_files(config);
    if !sinks.is_empty() {
        outcome.message = format!(
            "{} ({}: left alone, no file to rotate)",
            outcome.message,
            sinks.join(" and ")
        );
    }
    outcome
}

/// `reopen-logs` of the log files.
fn reopen_files(config: &Config) -> Outcome {
    let Some(signal) = config.reopen_logs_on else {
        return Outcome::new(
            Action::ReopenLogs,
            3,
            "cannot reopen-logs: reopen_logs_on is not configured, so the daemon does not reopen its log files on a signal",
        );
    };
    let signal =
        nix::sys::signal::Signal::try_from(signal).unwrap_or(nix::sys::signal::Signal::SIGHUP);
    match target(config, Action::ReopenLogs) {
        Ok(target) => client::reopen_logs(&target, signal, config.reload_timeout),
        Err(outcome) => outcome,
    }
}

/// `upgrade`: see [`Daemon::upgrade`](crate::Daemon::upgrade). `args` for the new daemon, or, with
/// `None`, the running daemon's own.
pub(crate) fn upgrade(config: &Config, args: Option<Vec<std::ffi::OsString>>) -> Outcome {
    let schedule = match schedule::of(config) {
        Ok(schedule) => schedule,
        Err(message) => return Outcome::new(Action::Upgrade, 2, message),
    };
    match target(config, Action::Upgrade) {
        #[cfg(target_os = "linux")]
        Ok(target) => upgrade::upgrade(
            &target,
            args,
            &schedule,
            config.ready_timeout,
            config.commands.is_some(),
        ),
        #[cfg(not(target_os = "linux"))]
        Ok(target) => client::upgrade(&target, args, &schedule, config.ready_timeout),
        Err(outcome) => outcome,
    }
}
