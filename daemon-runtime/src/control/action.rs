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
}

impl Action {
    /// Every action, in the order `help` lists them.
    pub const ALL: [Action; 7] = [
        Action::Start,
        Action::Stop,
        Action::Status,
        Action::Restart,
        Action::Reload,
        Action::ReopenLogs,
        Action::Upgrade,
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
            other => {
                return Err(format!(
                    "unknown action {other:?}: expected start, stop, status, restart, reload or reopen-logs"
                ));
            }
        })
    }
}

/// The actions a first argument is taken for a misspelling of: the closest within an edit distance of a
/// third of the action's length (1 for `stop`, 2 for `status`); never a word that starts with `-` (an
/// option for the program).
pub(super) fn misspelt_action(word: &str) -> Option<&'static str> {
    if word.starts_with('-') {
        return None;
    }
    Action::ALL
        .iter()
        .map(|action| (edit_distance(word, action.as_str()), action.as_str()))
        .filter(|(distance, name)| *distance <= name.len() / 3)
        .min()
        .map(|(_, name)| name)
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters (`stauts` for `status`) count 1 each.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
        assert_eq!(edit_distance("stauts", "status"), 1);
    }
}
