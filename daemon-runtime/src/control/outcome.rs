//! What an action did: the LSB exit code, the message, what is known of the daemon's process, as text or
//! JSON.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Action;

/// What a control action found or did: an LSB exit code, a one-line message, and what is known of the
/// daemon's process.
///
/// | action | code | meaning |
/// |---|---|---|
/// | `status` | 0 | running: `running (pid N)` |
/// | `status` | 1 | not running, but the pid file exists (a daemon died without removing it) |
/// | `status` | 3 | not running, no pid file |
/// | `status` | 4 | cannot tell; the message says why |
/// | `stop` | 0 | stopped, or was not running |
/// | `stop` | 1 | could not be stopped (still running after the whole schedule, or refused: the message says why) |
/// | `stop`, `reload` | 4 | permission denied: not allowed to signal the daemon |
/// | `reload` | 0 | reloaded (acknowledged), or signalled when the daemon does not acknowledge reloads |
/// | `reload` | 1 | the daemon reported that the reload failed (its message), or did not answer in time |
/// | `reload` | 3 | refused: the daemon does not handle SIGHUP (the signal would kill it) or ignores it |
/// | `reload` | 7 | not running |
/// | any | 6 | no pid file configured |
///
/// ```no_run
/// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").status();
/// println!("{outcome}");
/// std::process::exit(outcome.code().into());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "an Outcome carries the action's exit code"]
pub struct Outcome {
    pub(super) action: Action,
    code: u8,
    pub(super) message: String,
    pid: Option<u32>,
    pub(super) uptime: Option<Duration>,
    pub(super) user: Option<String>,
}

impl Outcome {
    pub(crate) fn new(action: Action, code: u8, message: impl Into<String>) -> Outcome {
        Outcome {
            action,
            code,
            message: message.into(),
            pid: None,
            uptime: None,
            user: None,
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// This stop's outcome, as the `restart` that it ended.
    pub(crate) fn into_restart(self) -> Outcome {
        Outcome {
            action: Action::Restart,
            ..self
        }
    }

    /// A `restart` whose start failed, with the start's error.
    pub(crate) fn failed_restart(error: impl Into<String>) -> Outcome {
        Outcome::new(Action::Restart, 1, error)
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the client is Linux's
    pub(crate) fn with_pid(mut self, pid: i32) -> Outcome {
        self.pid = u32::try_from(pid).ok();
        self
    }

    /// The action this is the outcome of.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The LSB exit code (see the table on [`Outcome`]).
    ///
    /// ```no_run
    /// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").stop();
    /// assert!(outcome.code() != 0 || outcome.success());
    /// ```
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Whether the exit code is 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The one-line message: `running (pid 4242)`, `stopped (pid 4242)`, or why not.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The daemon's pid, when the action found a running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How long the daemon has been running (`status` of a running daemon, from `/proc/PID/stat`).
    pub fn uptime(&self) -> Option<Duration> {
        self.uptime
    }

    /// The name (or numeric id) of the user the daemon runs as (`status` of a running daemon).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The outcome as one line of JSON, for `status --json`:
    /// `{"action":"status","code":0,"running":true,"pid":4242,"uptime_secs":12.5,"user":"app","message":"running (pid 4242)"}`.
    ///
    /// ```no_run
    /// let outcome = daemon_runtime::Daemon::new().pid_file("/run/app.pid").status();
    /// println!("{}", outcome.to_json());
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"action\":\"{}\",\"code\":{},\"running\":{}",
            self.action,
            self.code,
            self.pid.is_some() && self.action == Action::Status && self.code == 0
        );
        if let Some(pid) = self.pid {
            let _ = write!(out, ",\"pid\":{pid}");
        }
        if let Some(uptime) = self.uptime {
            let _ = write!(out, ",\"uptime_secs\":{:.3}", uptime.as_secs_f64());
        }
        if let Some(user) = &self.user {
            let _ = write!(out, ",\"user\":{}", json_string(user));
        }
        let _ = write!(out, ",\"message\":{}}}", json_string(&self.message));
        out
    }

    /// Prints the message and exits the process with the code: on stdout for `status` and for success,
    /// else as `PROGRAM: MESSAGE` on stderr.
    ///
    /// A message that cannot be written (stdout or stderr a pipe whose reader left, as in
    /// `myapp status | grep -q running`) is dropped: the exit code still says the outcome.
    pub fn exit(&self) -> ! {
        use std::io::Write as _;
        if self.action == Action::Status || self.success() {
            print_line(&self.message);
        } else {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}: {}",
                crate::error::program(),
                self.message
            );
        }
        std::process::exit(i32::from(self.code))
    }
}

/// One line on stdout, flushed; a write error (EPIPE: the reader left) is ignored, never a panic.
pub(crate) fn print_line(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_print_as_json() {
        let mut outcome = Outcome::new(Action::Status, 0, "running (pid 7)").with_pid(7);
        outcome.uptime = Some(Duration::from_millis(1500));
        outcome.user = Some("a\"b".into());
        assert_eq!(
            outcome.to_json(),
            r#"{"action":"status","code":0,"running":true,"pid":7,"uptime_secs":1.500,"user":"a\"b","message":"running (pid 7)"}"#
        );
        assert_eq!(
            Outcome::new(Action::Status, 3, "not running").to_json(),
            r#"{"action":"status","code":3,"running":false,"message":"not running"}"#
        );
    }
}
