//! The actions a program's first argument may name, and how a near miss is told from an argument.

use std::fmt;
use std::str::FromStr;

/// An action on a daemon, as the first argument of a program with `commands = true` names it.
///
/// ```
/// use daemon_runtime::control::Action;
///
/// assert_eq!("stop".parse::<Action>(), Ok(Action::Stop));
/// assert!("frobnicate".parse::<Action>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Start the daemon (what a program does without an action word).
    Start,
    /// Stop the running daemon: see [`Daemon::stop`](crate::Daemon::stop).
    Stop,
    /// Tell whether the daemon runs: see [`Daemon::status`](crate::Daemon::status).
    Status,
    /// Stop, then start: see [`Daemon::restart`](crate::Daemon::restart).
    Restart,
    /// Ask the daemon to reload (SIGHUP) and wait for its answer: see [`Daemon::reload`](crate::Daemon::reload).
    Reload,
    /// Ask the daemon to reopen its log files (its `reopen_logs_on` signal) and wait for its answer: see
    /// [`Daemon::reopen_logs`](crate::Daemon::reopen_logs).
    ReopenLogs,
    /// Start the executable as it is on disk now, hand it the listening sockets and the lock, and let the
    /// running daemon go once the new one is ready: see [`Daemon::upgrade`](crate::Daemon::upgrade).
    Upgrade,
    /// Print the service manager's file for this program, from its keys (`unit [systemd|launchd]`): see
    /// [`Daemon::unit`](crate::Daemon::unit).
    Unit,
    /// Put the systemd unit in place (`install [--force]`): see [`Daemon::install`](crate::Daemon::install).
    Install,
    /// Stop, disable and remove what `install` wrote: see [`Daemon::uninstall`](crate::Daemon::uninstall).
    Uninstall,
}

impl Action {
    /// Every action, in the order `help` lists them.
    pub const ALL: [Action; 10] = [
        Action::Start,
        Action::Stop,
        Action::Status,
        Action::Restart,
        Action::Reload,
        Action::ReopenLogs,
        Action::Upgrade,
        Action::Unit,
        Action::Install,
        Action::Uninstall,
    ];

    /// What the action does and its exit codes, for `help`.
    pub(super) fn summary(self) -> &'static str {
        match self {
            Action::Start => {
                "start the daemon (also without an action); 0 once it is ready, 1 if it failed"
            }
            Action::Stop => {
                "stop the daemon (its stop_retry schedule); 0 stopped or not running, 1 still running, 4 not allowed"
            }
            Action::Status => {
                "tell whether it runs (--json: as JSON); 0 running, 1 dead but its pid file is there, 3 not running, 4 cannot tell"
            }
            Action::Restart => "stop, then start; as stop, then as start",
            Action::Reload => {
                "SIGHUP, and wait for its answer; 0 reloaded, 1 failed, 3 it does not handle SIGHUP, 4 not allowed, 7 not running"
            }
            Action::ReopenLogs => {
                "its reopen_logs_on signal, and wait for its answer (for logrotate's postrotate); 0 reopened, 1 failed, 3 not configured, 4 not allowed, 7 not running"
            }
            Action::Upgrade => {
                "[ARGS...] start the new executable with the running daemon's sockets and lock, switch once it is ready; 0 upgraded, 1 failed (the old daemon serves on), 4 not allowed, 7 not running"
            }
            Action::Unit => {
                "print the systemd unit (or, with `launchd`, the property list) the keys call for; 0 printed, 1 failed, 2 bad argument"
            }
            Action::Install => {
                "write it to /etc/systemd/system (--force: over a different file) and reload systemd; 0 installed, 1 refused or failed, 3 no systemd, 4 not root"
            }
            Action::Uninstall => {
                "stop, disable and remove what install wrote; 0 removed or not installed, 1 refused or failed, 3 no systemd, 4 not root"
            }
        }
    }

    /// The word on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Status => "status",
            Action::Restart => "restart",
            Action::Reload => "reload",
            Action::ReopenLogs => "reopen-logs",
            Action::Upgrade => "upgrade",
            Action::Unit => "unit",
            Action::Install => "install",
            Action::Uninstall => "uninstall",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(word: &str) -> Result<Action, String> {
        Ok(match word {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "status" => Action::Status,
            "restart" => Action::Restart,
            "reload" => Action::Reload,
            "reopen-logs" => Action::ReopenLogs,
            "upgrade" => Action::Upgrade,
            "unit" => Action::Unit,
            "install" => Action::Install,
            "uninstall" => Action::Uninstall,
            other => {
                return Err(format!(
                    "unknown action {other:?}: expected start, stop, status, restart, reload, reopen-logs, unit, install or uninstall"
                ));
            }
        })
    }
}

/// The actions a first argument is taken for a misspelling of: the closest within an edit distance of a
/// third of the action's length (1 for `stop`, 2 for `status`); never a word that starts with `-` (an
/// option for the program). `unit` is left out: `init` and `unix`, one letter away, are words a program
/// may take itself (a misspelt `unit` starts the daemon, as any word that is no action does).
pub(super) fn misspelt_action(word: &str) -> Option<&'static str> {
    if word.starts_with('-') {
        return None;
    }
    Action::ALL
        .iter()
        .filter(|action| **action != Action::Unit)
        .map(|action| {
            (
                crate::spelling::edit_distance(word, action.as_str()),
                action.as_str(),
            )
        })
        .filter(|(distance, name)| *distance <= name.len() / 3)
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_action_is_a_typo() {
        assert_eq!(misspelt_action("stauts"), Some("status"));
        assert_eq!(misspelt_action("stpo"), Some("stop"));
        assert_eq!(misspelt_action("relaod"), Some("reload"));
        assert_eq!(misspelt_action("restat"), Some("restart"));
        assert_eq!(misspelt_action("--stop"), None, "an option for the program");
        assert_eq!(misspelt_action("serve"), None);
        assert_eq!(misspelt_action("config.toml"), None);
        assert_eq!(misspelt_action("isntall"), Some("install"));
        assert_eq!(
            misspelt_action("init"),
            None,
            "a program's own word, not `unit`"
        );
        assert_eq!(crate::spelling::edit_distance("stauts", "status"), 1);
    }
}
