//! Acting on a running daemon from outside: `status`, `stop`, `restart`, `reload`.
//!
//! Whether a daemon runs, and which process it is, is decided by the kernel, never by a pid read from a file:
//! the daemon holds an exclusive `flock` on its lock file for its whole life, and `/proc/locks` names the
//! process that holds it. Before any signal, the holder is pinned with a pidfd and checked again (the lock
//! still names it, one of its own descriptors holds the lock, it runs as the lock file's owner), so
//! neither a stale pid file, a recycled pid nor a planted file can turn a `stop` against an unrelated
//! process. Waiting is
//! event-driven: poll(2) on the pidfd for the exit, inotify on the lock file for a reload's acknowledgement.
//!
//! Exit codes follow the LSB init-script conventions (see [`Outcome::code`]).

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::{Daemon, Running};

/// How long `reload` waits for the daemon's acknowledgement unless told otherwise (systemd's default
/// `TimeoutSec=`).
pub(crate) const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(90);

/// [`Daemon::check_schedule`], as the builder keeps it for `start`.
pub(crate) type CheckSchedule = fn(&Daemon) -> Result<(), String>;

/// The stop schedule unless told otherwise: SIGTERM, up to 30 s for the exit, then SIGKILL and up to 5 s.
pub(crate) const DEFAULT_STOP_RETRY: &str = "TERM/30/KILL/5";

/// Set when `commands` consumed the program's first argument (an action word): see [`args_os`].
static CONSUMED_ACTION: AtomicBool = AtomicBool::new(false);

/// An action on a daemon, as the first argument of a program with `commands = true` names it.
///
/// ```
/// use daemon_runtime::Action;
///
/// assert_eq!("stop".parse::<Action>(), Ok(Action::Stop));
/// assert!("frobnicate".parse::<Action>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start the daemon (what a program does without an action word).
    Start,
    /// Stop the running daemon: see [`Daemon::stop`].
    Stop,
    /// Tell whether the daemon runs: see [`Daemon::status`].
    Status,
    /// Stop, then start: see [`Daemon::restart`].
    Restart,
    /// Ask the daemon to reload (SIGHUP) and wait for its answer: see [`Daemon::reload`].
    Reload,
    /// Ask the daemon to reopen its log files (its `reopen_logs_on` signal) and wait for its answer: see
    /// [`Daemon::reopen_logs`].
    ReopenLogs,
}

impl Action {
    /// Every action, in the order `help` lists them.
    pub const ALL: [Action; 6] = [
        Action::Start,
        Action::Stop,
        Action::Status,
        Action::Restart,
        Action::Reload,
        Action::ReopenLogs,
    ];

    /// What the action does and its exit codes, for `help`.
    fn summary(self) -> &'static str {
        match self {
            Action::Start => "start the daemon (also without an action); 0 once it is ready, 1 if it failed",
            Action::Stop => "stop the daemon (its stop_retry schedule); 0 stopped or not running, 1 still running, 4 not allowed",
            Action::Status => "tell whether it runs (--json: as JSON); 0 running, 1 dead but its pid file is there, 3 not running, 4 cannot tell",
            Action::Restart => "stop, then start; as stop, then as start",
            Action::Reload => "SIGHUP, and wait for its answer; 0 reloaded, 1 failed, 3 it does not handle SIGHUP, 4 not allowed, 7 not running",
            Action::ReopenLogs => "its reopen_logs_on signal, and wait for its answer (for logrotate's postrotate); 0 reopened, 1 failed, 3 not configured, 4 not allowed, 7 not running",
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
            other => {
                return Err(format!(
                    "unknown action {other:?}: expected start, stop, status, restart, reload or reopen-logs"
                ))
            }
        })
    }
}

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
    action: Action,
    code: u8,
    message: String,
    pid: Option<u32>,
    uptime: Option<Duration>,
    user: Option<String>,
}

impl Outcome {
    fn new(action: Action, code: u8, message: impl Into<String>) -> Outcome {
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
    fn with_pid(mut self, pid: i32) -> Outcome {
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
                crate::__private::program(),
                self.message
            );
        }
        std::process::exit(i32::from(self.code))
    }
}

/// One line on stdout, flushed; a write error (EPIPE: the reader left) is ignored, never a panic.
fn print_line(line: &str) {
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

/// The program's arguments (as [`std::env::args_os`]), without the action word that `commands = true`
/// consumed.
///
/// With `commands = true`, `myapp start --verbose` and `myapp --verbose` both start the daemon, and in the
/// daemon `std::env::args_os()` still shows the process's real command line (`start` included: the kernel's
/// argv cannot be changed), while this function shows `myapp --verbose` in both cases. A first argument
/// that is not an action word is left to the program and is not removed.
///
/// ```
/// let args: Vec<_> = daemon_runtime::args_os().collect();
/// assert!(!args.is_empty());
/// ```
pub fn args_os() -> impl Iterator<Item = OsString> {
    let skip = CONSUMED_ACTION.load(Ordering::Relaxed);
    std::env::args_os()
        .enumerate()
        .filter(move |(i, _)| !(skip && *i == 1))
        .map(|(_, arg)| arg)
}

/// The actions a first argument is taken for a misspelling of: the closest within an edit distance of a
/// third of the action's length (1 for `stop`, 2 for `status`); never a word that starts with `-` (an
/// option for the program).
fn misspelt_action(word: &str) -> Option<&'static str> {
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

/// What `help` (`--help`, `-h`) prints.
fn help() -> String {
    let program = crate::__private::program();
    let mut text = format!(
        "Usage: {program} [ACTION] [ARGUMENTS...]\n\nThe first argument may be an action on the daemon; \
         any other first argument goes to the program, which then starts the daemon.\n\nActions and \
         their exit codes:\n"
    );
    for action in Action::ALL {
        let _ = writeln!(text, "  {:<11} {}", action.as_str(), action.summary());
    }
    let _ = write!(text, "  {:<11} this text", "help");
    text
}

/// The program's arguments as `String`s (as [`std::env::args`]), without the action word that
/// `commands = true` consumed: see [`args_os`].
///
/// An argument that is not valid Unicode ends the process with `PROGRAM: argument N is not valid
/// UTF-8: ARG` on stderr and exit code 2 (an invalid command line, as LSB counts it), where
/// `std::env::args` would panic; use [`args_os`] to take such arguments.
///
/// ```
/// let args: Vec<String> = daemon_runtime::args().collect();
/// assert!(!args.is_empty());
/// ```
pub fn args() -> impl Iterator<Item = String> {
    args_os().enumerate().map(|(index, arg)| {
        arg.into_string().unwrap_or_else(|arg| {
            eprintln!(
                "{}: argument {index} is not valid UTF-8: {}",
                crate::__private::program(),
                arg.to_string_lossy()
            );
            std::process::exit(2)
        })
    })
}

/// A stop schedule, as start-stop-daemon's `--retry`: `TERM/30/KILL/5` sends SIGTERM, waits up to 30 s
/// for the process to exit, then sends SIGKILL and waits up to 5 s. Items are signals (`TERM`, `SIGTERM`,
/// `-15`: a number needs the `-`), timeouts in seconds (decimals allowed: `0.5`) and at most one
/// `forever`, after which the rest repeats until the process is gone. A lone timeout `T` means
/// `TERM/T/KILL/T`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    items: Vec<Item>,
    repeat_from: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Signal(Signal),
    Wait(Duration),
}

impl Schedule {
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let bad = |why: String| Err(format!("invalid stop_retry {text:?}: {why}"));
        if let Some(wait) = seconds(text) {
            return Ok(Schedule {
                items: vec![
                    Item::Signal(Signal::SIGTERM),
                    Item::Wait(wait),
                    Item::Signal(Signal::SIGKILL),
                    Item::Wait(wait),
                ],
                repeat_from: None,
            });
        }
        let mut items = Vec::new();
        let mut repeat_from = None;
        for part in text.split('/') {
            if part == "forever" {
                if repeat_from.is_some() {
                    return bad("`forever` may appear only once".into());
                }
                repeat_from = Some(items.len());
            } else if let Some(wait) = seconds(part) {
                items.push(Item::Wait(wait));
            } else {
                match signal(part) {
                    Some(signal) => items.push(Item::Signal(signal)),
                    None => {
                        return bad(format!(
                            "{part:?} is neither a signal (TERM, SIGKILL, -9), a timeout in seconds nor `forever`"
                        ))
                    }
                }
            }
        }
        if items.len() < 2 {
            return bad("a schedule has at least two items, like TERM/30/KILL/5".into());
        }
        if !items.iter().any(|i| matches!(i, Item::Signal(_))) {
            return bad("it sends no signal".into());
        }
        if let Some(from) = repeat_from {
            let waits = items[from..]
                .iter()
                .any(|i| matches!(i, Item::Wait(d) if !d.is_zero()));
            if !waits {
                return bad("what follows `forever` must include a timeout above 0".into());
            }
        }
        Ok(Schedule { items, repeat_from })
    }

    /// The time the schedule waits in one pass.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn total_wait(&self) -> Duration {
        self.items
            .iter()
            .map(|i| match i {
                Item::Wait(d) => *d,
                Item::Signal(_) => Duration::ZERO,
            })
            .sum()
    }
}

/// Seconds, as digits with an optional fraction (no sign, exponent or `inf`); at most a year.
fn seconds(text: &str) -> Option<Duration> {
    let valid = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|c| *c == '.').count() <= 1
        && text.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    let secs: f64 = text.parse().ok()?;
    (secs <= 365.0 * 86400.0).then(|| Duration::from_secs_f64(secs))
}

/// A signal by name (`TERM`, `SIGTERM`, any case, optionally with a leading `-`) or by number after a `-`
/// (`-9`; a bare number is a timeout).
fn signal(text: &str) -> Option<Signal> {
    let text = text.strip_prefix('-').unwrap_or(text);
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).ok()
}

impl Daemon {
    /// Whether the program's first argument names an action (`commands = true`): none or `start` starts
    /// the daemon as usual; `stop`, `status`, `restart` and `reload` act on the running daemon and exit with
    /// the LSB code (see [`Outcome`]); `status --json` prints [`Outcome::to_json`]; `help` (or `--help`,
    /// `-h`) lists the actions and their exit codes. A first argument within a small edit distance of an
    /// action (`stauts`), not starting with `-`, is refused as a typo (`unknown action `stauts`: did you
    /// mean `status`?`, exit code 2) instead of starting the daemon. Any other first argument is left to
    /// the program; [`args`] and [`args_os`] show the arguments without a consumed action word. Needs a
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
        self.commands = commands.then_some(Daemon::run_command);
        if commands {
            self.check_schedule = Some(Daemon::check_schedule);
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
        self.stop_retry = Some(schedule.into());
        self.check_schedule = Some(Daemon::check_schedule);
        self
    }

    /// How long [`reload`](Daemon::reload) waits for the daemon to acknowledge a reload (default 90 s).
    ///
    /// ```
    /// let daemon = daemon_runtime::Daemon::new().reload_timeout(std::time::Duration::from_secs(10));
    /// # drop(daemon);
    /// ```
    pub fn reload_timeout(mut self, timeout: Duration) -> Daemon {
        self.reload_timeout = timeout;
        self
    }

    /// Whether the daemon configured with this pid file runs, decided by the kernel: the process that holds
    /// the lock file's `flock` (`/proc/locks`), never a pid read from the pid file. Exit codes: 0 running
    /// (`running (pid N)`, with [`Outcome::pid`], [`uptime`](Outcome::uptime) and [`user`](Outcome::user)),
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
        match self.control_pid_file(Action::Status) {
            Ok(target) => imp::status(&target),
            Err(outcome) => outcome,
        }
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
        let schedule = match self.schedule() {
            Ok(schedule) => schedule,
            Err(message) => return Outcome::new(Action::Stop, 2, message),
        };
        match self.control_pid_file(Action::Stop) {
            Ok(target) => imp::stop(&target, &schedule),
            Err(outcome) => outcome,
        }
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
        match self.control_pid_file(Action::Reload) {
            Ok(target) => imp::reload(&target, self.reload_timeout),
            Err(outcome) => outcome,
        }
    }

    /// Asks the daemon to reopen its log files (after logrotate moved them), and waits for its answer:
    /// sends the configured [`reopen_logs_on`](Daemon::reopen_logs_on) signal to the lock's holder through
    /// a pidfd, as [`reload`](Daemon::reload) sends SIGHUP, and waits up to
    /// [`reload_timeout`](Daemon::reload_timeout) for the daemon to say how the reopen went. So logrotate's
    /// `postrotate` never signals a pid read from a file, and rotation need not be a configuration
    /// reload (with `reopen_logs_on = "SIGUSR1"`). Exit codes: 0 reopened, 1 the reopen failed (with the
    /// daemon's reason, such as `cannot reopen log file /var/log/app/app.log: Permission denied (os error
    /// 13)`) or was not answered in time, 3 `reopen_logs_on` is not configured (or the daemon does not
    /// reopen on that signal), 4 permission denied, 7 not running.
    ///
    /// ```no_run
    /// use daemon_runtime::{Daemon, Signal};
    ///
    /// let daemon = Daemon::new().pid_file("/run/app.pid").reopen_logs_on(Signal::User1);
    /// daemon.reopen_logs().exit();
    /// ```
    pub fn reopen_logs(&self) -> Outcome {
        let Some(signal) = self.reopen_logs_on else {
            return Outcome::new(
                Action::ReopenLogs,
                3,
                "cannot reopen-logs: reopen_logs_on is not configured, so the daemon does not reopen its log files on a signal",
            );
        };
        let signal = nix::sys::signal::Signal::try_from(signal.number())
            .unwrap_or(nix::sys::signal::Signal::SIGHUP);
        match self.control_pid_file(Action::ReopenLogs) {
            Ok(target) => imp::reopen_logs(&target, signal, self.reload_timeout),
            Err(outcome) => outcome,
        }
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
        let stopped = self.stop();
        if !stopped.success() {
            return Err(Outcome {
                action: Action::Restart,
                ..stopped
            });
        }
        // The action word was handled here; start() must not handle it again.
        self.commands = None;
        self.start()
            .map_err(|error| Outcome::new(Action::Restart, 1, error.to_string()))
    }

    /// For `commands = true`: acts on the first argument. Returns to start the daemon (no argument,
    /// `start`, `restart` after its stop, or a word that is not an action); exits the process otherwise.
    pub(crate) fn run_command(&self) {
        let mut args = std::env::args_os().skip(1);
        let Some(word) = args.next() else { return };
        let Some(word) = word.to_str() else { return };
        let action = match word.parse::<Action>() {
            Ok(action) => action,
            Err(_) if matches!(word, "help" | "--help" | "-h") => {
                print_line(&help());
                std::process::exit(0)
            }
            Err(_) => {
                // A word that is nearly an action is a typo, not an argument for the program: starting
                // the daemon on `myapp stauts` would be the wrong answer to the question asked.
                if let Some(near) = misspelt_action(word) {
                    let program = crate::__private::program();
                    eprintln!(
                        "{program}: unknown action `{word}`: did you mean `{near}`? (`{program} help` lists the actions)"
                    );
                    std::process::exit(2);
                }
                return;
            }
        };
        CONSUMED_ACTION.store(true, Ordering::Relaxed);
        match action {
            Action::Start => {}
            Action::Restart => {
                let stopped = self.stop();
                if !stopped.success() {
                    Outcome {
                        action: Action::Restart,
                        ..stopped
                    }
                    .exit();
                }
            }
            Action::Status => {
                let outcome = self.status();
                if args.next().is_some_and(|a| a == "--json") {
                    print_line(&outcome.to_json());
                    std::process::exit(i32::from(outcome.code()));
                }
                outcome.exit();
            }
            Action::Stop => self.stop().exit(),
            Action::Reload => self.reload().exit(),
            Action::ReopenLogs => self.reopen_logs().exit(),
        }
    }

    pub(crate) fn schedule(&self) -> Result<Schedule, String> {
        Schedule::parse(self.stop_retry.as_deref().unwrap_or(DEFAULT_STOP_RETRY))
    }

    /// For `start`: whether the stop schedule parses (the `CheckSchedule` the builder keeps).
    fn check_schedule(&self) -> Result<(), String> {
        self.schedule().map(drop)
    }

    /// What the actions act on: the configured pid file, made absolute, and the configured user's uid (who
    /// may own the files besides root and the caller); or the outcome that says there is no pid file.
    fn control_pid_file(&self, action: Action) -> Result<Target, Outcome> {
        let Some(path) = &self.pid_file else {
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
        let pid_file = path.clone();
        let user = self
            .user
            .as_deref()
            .and_then(|user| match user.parse::<u32>() {
                Ok(uid) => Some(uid),
                Err(_) => nix::unistd::User::from_name(user)
                    .ok()
                    .flatten()
                    .map(|u| u.uid.as_raw()),
            });
        Ok(Target { pid_file, user })
    }
}

/// The files an action looks at, and who besides root and the caller may own them.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Target {
    pid_file: PathBuf,
    /// The uid of the configured `user` (the daemon gives it the lock file), if any.
    user: Option<u32>,
}

/// The daemon's side of the control actions: a small text record in its lock file, written through the
/// descriptor the daemon locked it with (opened before any privilege drop: the lock file is root's, so
/// no other process of the daemon's user can write it, issue 18.4), and read by `reload`, `reopen-logs`
/// (which watch the file with inotify) and `status`.
///
/// ```text
/// daemon-runtime control 2
/// pid 4242
/// fd 5
/// subscribed
/// reload 3 ok
/// reopen-on 10
/// reopen 2 failed cannot reopen log file /var/log/app/app.log: Permission denied (os error 13)
/// end 5f0c2e91
/// ```
///
/// `pid` names the daemon and `fd` the descriptor it holds the lock through (a candidate, and where to
/// look first, which the control actions verify, never trust); `subscribed` says the
/// program receives signals as events (so it answers reloads); the reload line is `reload N pending`,
/// `reload N ok` or `reload N failed MESSAGE`, N counting the Reload events delivered; `reopen-on S` says
/// the log files are reopened on signal S, and the reopen line answers the Nth such signal the same way.
/// The last line carries a checksum of the lines above it: the record is rewritten in place (`pwrite` at
/// offset 0, then `ftruncate`), so a reader that catches it half-written sees a bad checksum and waits for
/// the next change. At a clean exit the record is emptied.
pub(crate) mod record {
    use std::fmt::Write as _;
    use std::os::fd::{BorrowedFd, RawFd};
    use std::sync::Mutex;

    const HEADER: &str = "daemon-runtime control 2";
    /// The longest failure message kept.
    const MAX_MESSAGE: usize = 512;

    struct State {
        /// The lock file's descriptor, owned by the pid file code, which detaches it before closing it.
        fd: Option<RawFd>,
        /// The process that attached it: a child forked since never writes its parent's record.
        owner: u32,
        subscribed: bool,
        seq: u64,
        reload: Answer,
        /// The signal number the log files are reopened on, if any.
        reopen_on: Option<i32>,
        reopen_seq: u64,
        reopen: Answer,
    }

    /// How the latest request of a kind went.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Answer {
        None,
        Pending,
        Ok,
        Failed(String),
    }

    static STATE: Mutex<State> = Mutex::new(State {
        fd: None,
        owner: 0,
        subscribed: false,
        seq: 0,
        reload: Answer::None,
        reopen_on: None,
        reopen_seq: 0,
        reopen: Answer::None,
    });

    fn with_state(f: impl FnOnce(&mut State)) {
        let mut state = STATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state);
        write(&state);
    }

    /// The lock file is open (and locked) as `fd` for the daemon's life: records go there from now on.
    pub(crate) fn attach(fd: RawFd) {
        with_state(|state| {
            state.fd = Some(fd);
            state.owner = std::process::id();
        });
    }

    /// The lock file is about to be closed: stop writing to its descriptor.
    pub(crate) fn detach() {
        let mut state = STATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.fd = None;
    }

    /// The program receives Reload events (lifecycle hook `subscribed`).
    pub(crate) fn subscribed() {
        with_state(|state| state.subscribed = true);
    }

    /// A Reload event was handed to the program (lifecycle hook `reload_delivered`).
    pub(crate) fn reload_delivered() {
        with_state(|state| {
            state.seq += 1;
            state.reload = Answer::Pending;
        });
    }

    /// The program said how its reload went (lifecycle hook `reload_done`).
    pub(crate) fn reload_done(result: Result<(), &str>) {
        with_state(|state| state.reload = answer(result));
    }

    /// The log files are reopened on signal `number` from now on.
    pub(crate) fn reopen_on(number: i32) {
        with_state(|state| state.reopen_on = Some(number));
    }

    /// The reopen asked for by the `seq`th signal is done.
    pub(crate) fn reopen_done(seq: u64, result: Result<(), &str>) {
        with_state(|state| {
            state.reopen_seq = seq;
            state.reopen = answer(result);
        });
    }

    fn answer(result: Result<(), &str>) -> Answer {
        match result {
            Ok(()) => Answer::Ok,
            Err(message) => Answer::Failed(clean(message)),
        }
    }

    /// One line, printable, bounded.
    fn clean(message: &str) -> String {
        let mut out: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if out.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
        }
        out
    }

    fn line(body: &mut String, kind: &str, seq: u64, answer: &Answer) {
        let _ = match answer {
            Answer::None => Ok(()),
            Answer::Pending => writeln!(body, "{kind} {seq} pending"),
            Answer::Ok => writeln!(body, "{kind} {seq} ok"),
            Answer::Failed(message) => writeln!(body, "{kind} {seq} failed {message}"),
        };
    }

    fn encode(state: &State) -> String {
        let mut body = format!("{HEADER}\npid {}\n", state.owner);
        if let Some(fd) = state.fd {
            let _ = writeln!(body, "fd {fd}");
        }
        if state.subscribed {
            body.push_str("subscribed\n");
        }
        line(&mut body, "reload", state.seq, &state.reload);
        if let Some(number) = state.reopen_on {
            let _ = writeln!(body, "reopen-on {number}");
        }
        line(&mut body, "reopen", state.reopen_seq, &state.reopen);
        let sum = checksum(body.as_bytes());
        let _ = writeln!(body, "end {sum:08x}");
        body
    }

    fn write(state: &State) {
        let Some(fd) = state.fd else { return };
        if state.owner != std::process::id() {
            return;
        }
        let text = encode(state);
        // SAFETY: `fd` is the lock file's descriptor, open for as long as it is attached: the pid file code
        // detaches it (under this same mutex, which the caller holds) before closing it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        // A record that cannot be written only means `reload` will time out: never fail the daemon for it.
        if let Ok(written) = pwrite(fd, text.as_bytes()) {
            if let Ok(length) = libc::off_t::try_from(written) {
                let _ = nix::unistd::ftruncate(fd, length);
            }
        }
    }

    fn pwrite(fd: BorrowedFd<'_>, bytes: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: pwrite(2) reads `bytes.len()` bytes from a live slice and writes them to an open fd.
        let n = unsafe { libc::pwrite(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }

    /// FNV-1a, 32 bits: enough to tell a torn record from a whole one.
    fn checksum(bytes: &[u8]) -> u32 {
        bytes.iter().fold(0x811c_9dc5, |hash: u32, b| {
            (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        })
    }

    /// A whole record, as the control actions read it (on Linux).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Parsed {
        pub(crate) subscribed: bool,
        pub(crate) seq: u64,
        pub(crate) reload: Answer,
        pub(crate) reopen_on: Option<i32>,
        pub(crate) reopen_seq: u64,
        pub(crate) reopen: Answer,
    }

    /// Parses a record; `None` for a torn, empty or foreign one.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn parse(bytes: &[u8]) -> Option<Parsed> {
        let text = std::str::from_utf8(bytes).ok()?;
        let end = text.find("\nend ")? + 1;
        let (body, tail) = text.split_at(end);
        let sum = tail.strip_prefix("end ")?.get(..8)?;
        if u32::from_str_radix(sum, 16).ok()? != checksum(body.as_bytes()) {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut parsed = Parsed {
            subscribed: false,
            seq: 0,
            reload: Answer::None,
            reopen_on: None,
            reopen_seq: 0,
            reopen: Answer::None,
        };
        let answer = |rest: &str| -> Option<(u64, Answer)> {
            let (seq, state) = rest.split_once(' ')?;
            let answer = match state {
                "pending" => Answer::Pending,
                "ok" => Answer::Ok,
                _ => Answer::Failed(state.strip_prefix("failed ")?.to_string()),
            };
            Some((seq.parse().ok()?, answer))
        };
        for line in lines {
            if line == "subscribed" {
                parsed.subscribed = true;
            } else if let Some(rest) = line.strip_prefix("reload ") {
                (parsed.seq, parsed.reload) = answer(rest)?;
            } else if let Some(rest) = line.strip_prefix("reopen-on ") {
                parsed.reopen_on = Some(rest.parse().ok()?);
            } else if let Some(rest) = line.strip_prefix("reopen ") {
                (parsed.reopen_seq, parsed.reopen) = answer(rest)?;
            }
        }
        Some(parsed)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn records_round_trip_and_torn_ones_are_rejected() {
            let state = State {
                fd: None,
                owner: 4242,
                subscribed: true,
                seq: 3,
                reload: Answer::Failed(clean("bad\nconfig: line 3")),
                reopen_on: Some(10),
                reopen_seq: 2,
                reopen: Answer::Ok,
            };
            let text = encode(&state);
            assert!(
                text.starts_with("daemon-runtime control 2\npid 4242\n"),
                "{text}"
            );
            let parsed = parse(text.as_bytes()).unwrap();
            assert!(parsed.subscribed);
            assert_eq!(parsed.seq, 3);
            assert_eq!(parsed.reload, Answer::Failed("bad config: line 3".into()));
            assert_eq!(
                (parsed.reopen_on, parsed.reopen_seq, &parsed.reopen),
                (Some(10), 2, &Answer::Ok)
            );
            // A longer old record under a shorter new one, before the truncate: still the new one.
            let mut torn = text.clone().into_bytes();
            torn.extend_from_slice(b"reload 2 ok\nend 00000000\n");
            assert_eq!(parse(&torn), Some(parsed));
            // A byte from an older record in the middle: the checksum catches it.
            let mixed = text.replacen("reload 3", "reload 2", 1);
            assert_eq!(parse(mixed.as_bytes()), None);
            assert_eq!(parse(b""), None);
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    //! The Linux implementation: the holder verified through its own descriptors (holder.rs), pidfds
    //! (Linux 5.3), inotify.

    use std::io;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::path::Path;
    use std::time::{Duration, Instant};

    use nix::errno::Errno;
    use nix::fcntl::OFlag;
    use nix::poll::{poll, PollFd, PollFlags};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use nix::sys::signal::Signal;
    use nix::sys::stat::{fstat, Mode, SFlag};

    use super::record::{self, Answer};
    use super::{Action, Item, Outcome, Schedule, Target};
    use crate::holder::{self, LockFile, Probe, Verdict};
    use crate::pidfd::{self, poll_timeout, wait_exit};
    use crate::pidfile::{lock_path, locks, Dir, DirRefusal};

    /// Why an action cannot go on: the message, and whether it is a matter of permission (LSB code 4).
    #[derive(Debug)]
    struct Refusal {
        message: String,
        permission: bool,
    }

    impl Refusal {
        fn new(message: impl Into<String>) -> Refusal {
            Refusal {
                message: message.into(),
                permission: false,
            }
        }

        fn io(what: &str, path: &Path, error: &io::Error) -> Refusal {
            Refusal {
                message: format!("cannot {what} {}: {error}", path.display()),
                permission: matches!(error.raw_os_error(), Some(libc::EACCES | libc::EPERM)),
            }
        }

        fn timed_out(lock: &LockFile) -> Refusal {
            Refusal::new(format!(
                "the holder of {} could not be verified within {:?}",
                lock.path.display(),
                holder::DEADLINE
            ))
        }

        /// The outcome of `action` refused for this reason (status: 4 "cannot tell").
        fn outcome(self, action: Action) -> Outcome {
            let code = if action == Action::Status || self.permission {
                4
            } else {
                1
            };
            Outcome::new(action, code, self.message)
        }
    }

    /// What the files and the kernel say.
    enum Found {
        /// `pid` holds the lock (verified as far as this user can see).
        Running { pid: i32, lock: LockFile },
        /// Nobody holds the lock.
        Stopped(Stopped),
    }

    /// The files a daemon that is not running left.
    struct Stopped {
        /// The pid file exists: `Some(empty)`; `None` when it does not.
        pid_file: Option<bool>,
        /// The lock file, if there is one.
        lock: Option<LockFile>,
        /// Why the pid file would be refused, where it would (only looked at, to tell "stopped" from
        /// "dead, files left").
        refused: Option<String>,
        /// The lock, taken by this process where it may open the lock file: proof that nobody holds it,
        /// kept for a clean-up.
        taken: Option<std::fs::File>,
    }

    /// The pid file's directory, pinned and checked as the start checks it: one that others than root and
    /// the caller may write (but for the sticky `/tmp`) could hold another lock file in place of the
    /// daemon's, so that the actions would act on a decoy.
    fn pin_dir(target: &Target) -> Result<Dir, Refusal> {
        Dir::of(&target.pid_file).map_err(|(dir, why)| match why {
            DirRefusal::Os(errno) => Refusal::io("look at", &dir, &io::Error::from(errno)),
            DirRefusal::Writable(why) => Refusal::new(format!(
                "refusing to use pid file {}: its directory {} is not safe: {why}",
                target.pid_file.display(),
                dir.display()
            )),
        })
    }

    /// Opens `path` in `dir` with `O_PATH|O_NOFOLLOW` (no read permission needed) and checks it: a regular
    /// file, not group- or world-writable, owned by root or the caller (a file of the daemon's user in
    /// the daemon's place would be a decoy: the start makes them root's). `None` when it does not exist.
    fn pin(dir: &Dir, path: &Path, what: &str) -> Result<Option<LockFile>, Refusal> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let name = path.file_name().unwrap_or(path.as_os_str());
        let fd = match nix::fcntl::openat(&dir.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(Refusal::io("look at", path, &io::Error::from(errno))),
        };
        let stat = fstat(&fd).map_err(|e| Refusal::io("look at", path, &io::Error::from(e)))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        let refuse = |why: &str| {
            Err(Refusal::new(format!(
                "refusing to use {what} {}: {why}",
                path.display()
            )))
        };
        if kind == SFlag::S_IFLNK {
            return refuse("it is a symbolic link");
        }
        if kind != SFlag::S_IFREG {
            return refuse("it is not a regular file");
        }
        if stat.st_mode & 0o022 != 0 {
            return refuse(&format!(
                "it is group- or world-writable (mode {:o})",
                stat.st_mode & 0o7777
            ));
        }
        if stat.st_nlink != 1 {
            // As the start refuses it: another name of the inode may be any file whose flock holder is
            // not our daemon.
            return refuse(&format!("it has {} hard links", stat.st_nlink));
        }
        let euid = nix::unistd::geteuid().as_raw();
        if stat.st_uid != 0 && stat.st_uid != euid {
            return refuse(&format!(
                "it is owned by uid {}, neither root nor the caller (uid {euid})",
                stat.st_uid
            ));
        }
        Ok(Some(LockFile {
            ids: locks::ids(fd.as_fd(), stat.st_dev, stat.st_ino),
            fd,
            path: path.to_path_buf(),
            dev: stat.st_dev,
            ino: stat.st_ino,
            uid: stat.st_uid,
            size: stat.st_size,
        }))
    }

    /// Refuses when `/proc` is not the procfs of the caller's pid namespace (`unshare --pid --fork` without
    /// `--mount-proc`, `nsenter -m` into a container, a sandbox that binds the host's `/proc`): the pids
    /// found there are then numbered in another namespace than the one `pidfd_open` resolves them in, so
    /// a holder found there could pin (and a stop kill) an unrelated process.
    fn proc_is_ours() -> Result<(), Refusal> {
        let own = std::process::id();
        let seen = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|link| link.to_str().and_then(|s| s.parse::<u32>().ok()));
        if seen == Some(own) {
            return Ok(());
        }
        let seen = seen.map_or_else(|| "no pid".to_string(), |pid| format!("pid {pid}"));
        Err(Refusal::new(format!(
            "/proc is not the procfs of this process's pid namespace (/proc/self names {seen}, this process is pid {own}), so the lock's holder cannot be identified; mount a procfs for this namespace (unshare --mount-proc) or run the command in the daemon's namespace"
        )))
    }

    /// The pid `pidfd` refers to, numbered in `/proc`'s pid namespace (the `Pid:` line of its fdinfo; 0 or
    /// -1 when the process is outside that namespace or gone).
    fn pidfd_pid(pidfd: &OwnedFd) -> Option<i32> {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
        status_field(&info, "Pid")?.parse().ok()
    }

    /// Finds the lock's holder, as far as the files and the kernel say (see holder.rs): the pids the record
    /// and the pid file name, each verified through its own descriptors; else whether anyone holds the
    /// lock, asked by taking it; only then `/proc/locks`.
    fn inspect(target: &Target) -> Result<Found, Refusal> {
        proc_is_ours()?;
        let dir = pin_dir(target)?;
        let lock_file = lock_path(&target.pid_file);
        let lock = pin(&dir, &lock_file, "lock file")?;
        let Some(lock) = lock else {
            return Ok(Found::Stopped(stopped(target, &dir, None, None)));
        };
        let deadline = Instant::now() + holder::DEADLINE;
        let mut candidates = vec![];
        let record = holder::record_of(&lock);
        for (pid, fd) in [
            record,
            holder::pid_file_pid(&target.pid_file).map(|pid| (pid, None)),
        ]
        .into_iter()
        .flatten()
        {
            if !candidates.iter().any(|(seen, _)| *seen == pid) {
                candidates.push((pid, fd));
            }
        }
        for &(pid, fd) in &candidates {
            match holder::verify(pid, &lock, fd, deadline) {
                Ok(Verdict::Holds) if may_hold(&lock, pid, target)? => {
                    return Ok(Found::Running { pid, lock });
                }
                Ok(Verdict::Holds | Verdict::DoesNot | Verdict::Unseen) => {}
                Err(holder::TimedOut) => return Err(Refusal::timed_out(&lock)),
            }
        }
        let held = match holder::probe(&lock) {
            Some(Probe::Free(taken)) => {
                return Ok(Found::Stopped(stopped(
                    target,
                    &dir,
                    Some(lock),
                    Some(taken),
                )))
            }
            Some(Probe::Held) => true,
            // This caller may not open the lock file (the daemon's user, a monitoring user).
            None => false,
        };
        // A holder the files do not name, or one this caller may not look at: the kernel's table.
        let named = holder::from_table(&lock.ids, deadline)
            .map_err(|e| Refusal::io("read", Path::new(locks::PATH), &e))?;
        match named {
            None if held => Err(Refusal::new(format!(
                "lock file {} is locked, but /proc/locks names no holder for it (a holder in another pid namespace, or a file system whose lock entries name another device), so its holder cannot be identified",
                lock_file.display()
            ))),
            None => Ok(Found::Stopped(stopped(target, &dir, Some(lock), None))),
            Some(pid) if pid <= 0 => Err(Refusal::new(format!(
                "lock file {} is held by a process outside this pid namespace",
                lock_file.display()
            ))),
            Some(pid) => {
                let verdict = holder::verify(pid, &lock, None, deadline)
                    .map_err(|holder::TimedOut| Refusal::timed_out(&lock))?;
                // A process that is exiting has closed its descriptors before the kernel drops its lock:
                // it is the holder, on its way out.
                if verdict == Verdict::DoesNot && !exiting(pid) {
                    return Err(Refusal::new(format!(
                        "refusing to act on pid {pid}, which /proc/locks names as the holder of {}: none of its descriptors holds the lock (it is held through a descriptor another process shares)",
                        lock_file.display()
                    )));
                }
                if !may_hold(&lock, pid, target)? {
                    return Err(Refusal::new(format!(
                        "the holder of {} (pid {pid}) exited while it was looked at; try again",
                        lock_file.display()
                    )));
                }
                Ok(Found::Running { pid, lock })
            }
        }
    }

    /// What a stopped daemon left.
    fn stopped(
        target: &Target,
        dir: &Dir,
        lock: Option<LockFile>,
        taken: Option<std::fs::File>,
    ) -> Stopped {
        // The pid file is looked at only once the lock says nobody holds it: stop and reload never use
        // it for anything but a candidate, so what it has become (a symlink, another user's file) must not
        // block them (review F7).
        let (pid_file, refused) = match pin(dir, &target.pid_file, "pid file") {
            Ok(found) => (found.map(|file| file.size == 0), None),
            Err(refusal) => (Some(false), Some(refusal.message)),
        };
        Stopped {
            pid_file,
            lock,
            refused,
            taken,
        }
    }

    /// Whether the holder is the daemon's own: not PID 1, and running (real and effective uid) as the
    /// daemon's user, the configured `user`, or without one the lock file's owner (who started it). A flock
    /// belongs to the open file, so a compromised daemon could hand its descriptor to any process that
    /// takes descriptors (a root service keeping them, systemd's fd store) and have root's `stop` signal
    /// that process (review of issue 18, finding 1): only a process that runs as the daemon's user is
    /// ever acted on. `Ok(false)` when the process is gone.
    fn may_hold(lock: &LockFile, pid: i32, target: &Target) -> Result<bool, Refusal> {
        let Some(uids) = proc_uids(pid) else {
            return Ok(false);
        };
        let expected = target.user.unwrap_or(lock.uid);
        let (real, effective) = (uids.first().copied(), uids.get(1).copied());
        if pid != 1 && real == Some(expected) && effective == Some(expected) {
            return Ok(true);
        }
        Err(Refusal::new(format!(
            "refusing to act on pid {pid}, which holds the lock of {}: it runs as uid {}, not as the daemon's user (uid {expected}){}",
            lock.path.display(),
            effective.map_or_else(|| "?".to_string(), |uid| uid.to_string()),
            if pid == 1 { ", and it is PID 1" } else { "" }
        )))
    }

    /// Whether `pid` is exiting: `PF_EXITING` in the flags of /proc/PID/stat, or already a zombie. Between
    /// closing its descriptors and releasing their locks, an exiting process is still named by /proc/locks.
    fn exiting(pid: i32) -> bool {
        const PF_EXITING: u64 = 0x4;
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some((_, after_comm)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = after_comm.split_whitespace();
        let state = fields.next();
        let flags = fields.nth(5).and_then(|f| f.parse::<u64>().ok());
        matches!(state, Some("Z" | "X")) || flags.is_some_and(|f| f & PF_EXITING != 0)
    }

    /// The real, effective, saved and filesystem uids of `pid`.
    fn proc_uids(pid: i32) -> Option<Vec<u32>> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status_field(&status, "Uid")?
            .split_whitespace()
            .map(|u| u.parse().ok())
            .collect()
    }

    fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    }

    /// The holder, pinned by a pidfd and checked again after: the pid found may have exited and been
    /// recycled between that finding and `pidfd_open`, so the lock must still be held by it once the pidfd
    /// pins the process. `Err(Stopped)` when nobody holds the lock (any more).
    fn pin_holder(
        target: &Target,
        action: Action,
    ) -> Result<Result<(i32, OwnedFd, LockFile), Stopped>, Outcome> {
        for _ in 0..5 {
            let pid = match inspect(target).map_err(|r| r.outcome(action))? {
                Found::Stopped(stopped) => return Ok(Err(stopped)),
                Found::Running { pid, .. } => pid,
            };
            let pidfd = match pidfd::open(nix::unistd::Pid::from_raw(pid)) {
                Ok(pidfd) => pidfd,
                // Gone between the two looks: look again.
                Err(Errno::ESRCH) => continue,
                Err(errno) => {
                    return Err(Outcome::new(
                        action,
                        1,
                        format!(
                            "cannot pin pid {pid} (pidfd_open): {}",
                            io::Error::from(errno)
                        ),
                    ))
                }
            };
            // The pidfd must pin the very process found: the same number in /proc's pid namespace (a /proc
            // of another namespace is refused up front; this holds even if it is swapped under us).
            let pinned = pidfd_pid(&pidfd);
            if pinned == Some(-1) {
                // Exited since pidfd_open: look again.
                continue;
            }
            if pinned != Some(pid) {
                return Err(Refusal::new(format!(
                    "refusing to act on pid {pid}: the process pidfd_open pinned is {} in /proc's pid namespace, so /proc is not this pid namespace's",
                    pinned.map_or_else(|| "unknown".to_string(), |p| p.to_string())
                ))
                .outcome(action));
            }
            match inspect(target).map_err(|r| r.outcome(action))? {
                Found::Running { pid: now, lock } if now == pid => {
                    return Ok(Ok((pid, pidfd, lock)));
                }
                // The holder changed under us (a restart): look again.
                _ => {}
            }
        }
        Err(Outcome::new(
            action,
            1,
            format!(
                "the holder of {} kept changing; try again",
                lock_path(&target.pid_file).display()
            ),
        ))
    }

    pub(super) fn status(target: &Target) -> Outcome {
        let pid_file = &target.pid_file;
        match inspect(target) {
            Err(refusal) => {
                let mut outcome = refusal.outcome(Action::Status);
                outcome.message = format!("cannot tell whether it runs: {}", outcome.message);
                outcome
            }
            Ok(Found::Stopped(Stopped { pid_file: None, .. })) => {
                Outcome::new(Action::Status, 3, "not running")
            }
            // What a clean exit leaves where the daemon could not remove its files: an empty pid file
            // (a daemon that kept it open), or an empty lock file (the daemon empties its record last).
            Ok(Found::Stopped(Stopped {
                pid_file: Some(true),
                ..
            })) => Outcome::new(Action::Status, 3, "not running"),
            Ok(Found::Stopped(Stopped {
                lock: Some(lock),
                refused: None,
                ..
            })) if lock.size == 0 => Outcome::new(
                Action::Status,
                3,
                format!(
                    "not running (it exited cleanly; its pid file {} is left for the next start)",
                    pid_file.display()
                ),
            ),
            Ok(Found::Stopped(Stopped { refused, .. })) => Outcome::new(
                Action::Status,
                1,
                format!(
                    "not running, but pid file {} exists (no process holds its lock{})",
                    pid_file.display(),
                    refused.map_or(String::new(), |why| format!("; {why}"))
                ),
            ),
            Ok(Found::Running { pid, .. }) => {
                let mut outcome =
                    Outcome::new(Action::Status, 0, format!("running (pid {pid})")).with_pid(pid);
                outcome.uptime = uptime(pid);
                outcome.user = proc_uids(pid)
                    .and_then(|uids| uids.get(1).copied())
                    .map(user_name);
                outcome
            }
        }
    }

    /// How long `pid` has run: /proc/uptime minus its start time (field 22 of /proc/PID/stat, in clock
    /// ticks since boot).
    fn uptime(pid: i32) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_comm = stat.rsplit_once(')')?.1;
        let started_ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
        let started = Duration::from_secs(started_ticks / ticks)
            + Duration::from_nanos((started_ticks % ticks) * 1_000_000_000 / ticks);
        let boot = std::fs::read_to_string("/proc/uptime").ok()?;
        let up = Duration::try_from_secs_f64(boot.split_whitespace().next()?.parse().ok()?).ok()?;
        Some(up.saturating_sub(started))
    }

    fn user_name(uid: u32) -> String {
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(user)) => user.name,
            _ => uid.to_string(),
        }
    }

    fn denied(action: Action, signal: Signal, pid: i32) -> Outcome {
        Outcome::new(
            action,
            4,
            format!(
                "permission denied: cannot send {} to pid {pid} as uid {} (run as root or as the daemon's user)",
                signal.as_str(),
                nix::unistd::geteuid()
            ),
        )
        .with_pid(pid)
    }

    /// Removes what a stopped daemon left, where this caller holds the lock that proves nobody else does.
    fn clean_up(target: &Target, stopped: &Stopped) {
        if let (Some(taken), Ok(dir)) = (&stopped.taken, pin_dir(target)) {
            crate::pidfile::remove_left_files(&dir, &target.pid_file, taken);
        }
    }

    pub(super) fn stop(target: &Target, schedule: &Schedule) -> Outcome {
        let (pid, pidfd, lock) = match pin_holder(target, Action::Stop) {
            Err(outcome) => return outcome,
            Ok(Err(stopped)) => {
                // Stopping a stopped daemon succeeds (LSB); what it left goes, as after a stop.
                clean_up(target, &stopped);
                return Outcome::new(Action::Stop, 0, "not running (already stopped)");
            }
            Ok(Ok(pinned)) => pinned,
        };
        let mut last = None;
        let mut index = 0;
        loop {
            if index == schedule.items.len() {
                match schedule.repeat_from {
                    Some(from) => index = from,
                    None => break,
                }
            }
            match schedule.items[index] {
                Item::Signal(signal) => match pidfd::send(&pidfd, signal) {
                    Ok(()) => last = Some(signal),
                    Err(Errno::ESRCH) => return released(target, pid, &lock, last, schedule),
                    Err(Errno::EPERM) => return denied(Action::Stop, signal, pid),
                    Err(errno) => {
                        return Outcome::new(
                            Action::Stop,
                            1,
                            format!("cannot signal pid {pid}: {}", io::Error::from(errno)),
                        )
                        .with_pid(pid)
                    }
                },
                Item::Wait(timeout) => match wait_exit(&pidfd, timeout) {
                    Ok(true) => return released(target, pid, &lock, last, schedule),
                    Ok(false) => {}
                    Err(errno) => {
                        return Outcome::new(
                            Action::Stop,
                            1,
                            format!("cannot wait for pid {pid}: {}", io::Error::from(errno)),
                        )
                        .with_pid(pid)
                    }
                },
            }
            index += 1;
        }
        if wait_exit(&pidfd, Duration::ZERO) == Ok(true) {
            return released(target, pid, &lock, last, schedule);
        }
        Outcome::new(
            Action::Stop,
            1,
            format!("pid {pid} is still running at the end of the stop schedule"),
        )
        .with_pid(pid)
    }

    /// The process has exited: its lock went with its last descriptor, unless a process it spawned
    /// shares that descriptor. Waits for the lock too, bounded by the schedule's time, without reading
    /// the global lock table where this caller may take the lock to ask (root: the lock then proves that
    /// nobody holds it, and what the daemon could not remove is removed under it, as start-stop-daemon's
    /// `--remove-pidfile` does).
    fn released(
        target: &Target,
        pid: i32,
        lock: &LockFile,
        last: Option<Signal>,
        schedule: &Schedule,
    ) -> Outcome {
        let by = last.map_or(String::new(), |s| format!(", {}", s.as_str()));
        let stopped =
            Outcome::new(Action::Stop, 0, format!("stopped (pid {pid}{by})")).with_pid(pid);
        let still_held = || {
            Outcome::new(
                Action::Stop,
                1,
                format!(
                    "pid {pid} exited, but its lock on {} is still held by a process that shares its descriptor",
                    lock.path.display()
                ),
            )
            .with_pid(pid)
        };
        // The daemon's descriptor being closed wakes the wait (inotify, where this user may watch it; it is
        // read-write, so IN_CLOSE_WRITE, which this process's own read-only probes do not raise: watching
        // every close turned the wait into a busy loop); else it looks again every 100 ms.
        let closes = holder::reopen(lock).ok().and_then(|file| {
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
            inotify
                .add_watch(
                    format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
                    AddWatchFlags::IN_CLOSE_WRITE,
                )
                .ok()?;
            Some(inotify)
        });
        let deadline =
            Instant::now().checked_add(schedule.total_wait().max(Duration::from_secs(1)));
        loop {
            match holder::probe(lock) {
                Some(Probe::Free(taken)) => {
                    if let Ok(dir) = pin_dir(target) {
                        crate::pidfile::remove_left_files(&dir, &target.pid_file, &taken);
                    }
                    return stopped;
                }
                Some(Probe::Held) => {}
                // This caller may not take the lock (the daemon's user): the kernel's table says.
                None => {
                    let within = Instant::now() + holder::DEADLINE;
                    match holder::from_table(&lock.ids, within) {
                        Ok(None) => return stopped,
                        Ok(Some(_)) => {}
                        Err(error) => {
                            return Refusal::io("read", Path::new(locks::PATH), &error)
                                .outcome(Action::Stop)
                        }
                    }
                }
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return still_held();
            }
            let step = left.min(Duration::from_millis(100));
            match &closes {
                Some(inotify) => {
                    let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, poll_timeout(step));
                    while let Ok(events) = inotify.read_events() {
                        if events.is_empty() {
                            break;
                        }
                    }
                }
                None => std::thread::sleep(step),
            }
        }
    }

    /// A signal's disposition in `pid`, from the `SigCgt` and `SigIgn` masks of /proc/PID/status:
    /// `Some(true)` caught, `Some(false)` ignored, `None` default.
    fn disposition(pid: i32, signal: Signal) -> Result<Option<bool>, Refusal> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path)
            .map_err(|e| Refusal::io("read", Path::new(&path), &e))?;
        let bit = 1u64 << (signal as i32 - 1);
        let set = |name: &str| {
            status_field(&status, name)
                .and_then(|mask| u64::from_str_radix(mask, 16).ok())
                .map(|mask| mask & bit != 0)
        };
        match (set("SigCgt"), set("SigIgn")) {
            (Some(true), _) => Ok(Some(true)),
            (Some(false), Some(true)) => Ok(Some(false)),
            (Some(false), Some(false)) => Ok(None),
            _ => Err(Refusal::new(format!(
                "cannot read {}'s disposition in {path}",
                signal.as_str()
            ))),
        }
    }

    /// Refuses to send `signal` to a process that would die of it or ignore it.
    fn handles(action: Action, pid: i32, signal: Signal, what: &str) -> Result<(), Outcome> {
        match disposition(pid, signal) {
            Err(refusal) => Err(refusal.outcome(action)),
            Ok(Some(true)) => Ok(()),
            Ok(Some(false)) => Err(Outcome::new(
                action,
                3,
                format!(
                    "refusing to {action} pid {pid}: it ignores {}, so it would do nothing",
                    signal.as_str()
                ),
            )
            .with_pid(pid)),
            Ok(None) => Err(Outcome::new(
                action,
                3,
                format!(
                    "refusing to send {} to pid {pid}: it does not handle {}, whose default action would kill it ({what})",
                    signal.as_str(),
                    signal.as_str()
                ),
            )
            .with_pid(pid)),
        }
    }

    fn signal_error(action: Action, signal: Signal, pid: i32, errno: Errno) -> Outcome {
        match errno {
            Errno::EPERM => denied(action, signal, pid),
            Errno::ESRCH => Outcome::new(action, 7, "not running (it exited)"),
            errno => Outcome::new(
                action,
                1,
                format!("cannot signal pid {pid}: {}", io::Error::from(errno)),
            )
            .with_pid(pid),
        }
    }

    pub(super) fn reload(target: &Target, timeout: Duration) -> Outcome {
        let (pid, pidfd, lock) = match pin_holder(target, Action::Reload) {
            Err(outcome) => return outcome,
            Ok(Err(_)) => return Outcome::new(Action::Reload, 7, "not running"),
            Ok(Ok(pinned)) => pinned,
        };
        if let Err(outcome) = handles(
            Action::Reload,
            pid,
            Signal::SIGHUP,
            "the program must subscribe to Reload events",
        ) {
            return outcome;
        }
        // Watch the record before signalling, so that no answer can come unseen.
        let watch = Watch::new(&lock);
        let before = watch.as_ref().ok().and_then(Watch::read);
        if let Err(errno) = pidfd::send(&pidfd, Signal::SIGHUP) {
            return signal_error(Action::Reload, Signal::SIGHUP, pid, errno);
        }
        let signalled = |why: &str| {
            Outcome::new(
                Action::Reload,
                0,
                format!("signalled pid {pid} with SIGHUP ({why}, so whether the reload worked is unknown)"),
            )
            .with_pid(pid)
        };
        let watch = match watch {
            Ok(watch) => watch,
            Err(error) => {
                return signalled(&format!(
                    "its answer cannot be read: {} {error}",
                    lock.path.display()
                ))
            }
        };
        let Some(record) = before else {
            return signalled("it does not acknowledge reloads");
        };
        // With `reopen_logs_on = "SIGHUP"`, the same signal reopens the log files: a reopen that fails
        // fails the reload too, which otherwise would say nothing of it.
        let reopens = record.reopen_on == Some(libc::SIGHUP);
        let mut expected = vec![];
        if record.subscribed {
            expected.push(Expect::Reload(record.seq));
        }
        if reopens {
            expected.push(Expect::Reopen(record.reopen_seq));
        }
        if expected.is_empty() {
            return signalled("it does not acknowledge reloads");
        }
        let wanted = if record.subscribed {
            format!("reloaded (pid {pid})")
        } else {
            format!("reopened the log files (pid {pid})")
        };
        watch.wait(Action::Reload, &pidfd, pid, &expected, timeout, &wanted)
    }

    pub(super) fn reopen_logs(target: &Target, signal: Signal, timeout: Duration) -> Outcome {
        let action = Action::ReopenLogs;
        let (pid, pidfd, lock) = match pin_holder(target, action) {
            Err(outcome) => return outcome,
            Ok(Err(_)) => return Outcome::new(action, 7, "not running"),
            Ok(Ok(pinned)) => pinned,
        };
        let watch = Watch::new(&lock);
        let before = watch.as_ref().ok().and_then(Watch::read);
        // Where the record can be read, it must say that this signal reopens the log files: the
        // program may handle the signal for something else.
        if let Some(record) = &before {
            if record.reopen_on != Some(signal as i32) {
                return Outcome::new(
                    action,
                    3,
                    format!(
                        "refusing to send {} to pid {pid}: it does not reopen its log files on it (reopen_logs_on)",
                        signal.as_str()
                    ),
                )
                .with_pid(pid);
            }
        }
        if let Err(outcome) = handles(
            action,
            pid,
            signal,
            "it does not reopen its log files on it",
        ) {
            return outcome;
        }
        if let Err(errno) = pidfd::send(&pidfd, signal) {
            return signal_error(action, signal, pid, errno);
        }
        match (watch, before) {
            (Ok(watch), Some(record)) => watch.wait(
                action,
                &pidfd,
                pid,
                &[Expect::Reopen(record.reopen_seq)],
                timeout,
                &format!("reopened the log files (pid {pid})"),
            ),
            (Err(error), _) => Outcome::new(
                action,
                0,
                format!(
                    "signalled pid {pid} with {} (its answer cannot be read: {} {error}, so whether the reopen worked is unknown)",
                    signal.as_str(),
                    lock.path.display()
                ),
            )
            .with_pid(pid),
            (Ok(_), None) => Outcome::new(
                action,
                0,
                format!(
                    "signalled pid {pid} with {} (it keeps no record to answer in, so whether the reopen worked is unknown)",
                    signal.as_str()
                ),
            )
            .with_pid(pid),
        }
    }

    /// An answer to wait for: a reload, or a reopen, numbered above the one given.
    #[derive(Clone, Copy)]
    enum Expect {
        Reload(u64),
        Reopen(u64),
    }

    /// The lock file open for reading, watched with inotify.
    struct Watch {
        file: std::fs::File,
        inotify: Inotify,
    }

    impl Watch {
        fn new(lock: &LockFile) -> io::Result<Watch> {
            let file = holder::reopen(lock)?;
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
            // Through /proc/self/fd: the watch lands on the very inode we pinned.
            inotify.add_watch(
                format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
                AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_DELETE_SELF,
            )?;
            Ok(Watch { file, inotify })
        }

        fn read(&self) -> Option<record::Parsed> {
            use std::os::unix::fs::FileExt;
            let mut buffer = [0u8; 2048];
            let n = self.file.read_at(&mut buffer, 0).ok()?;
            record::parse(&buffer[..n])
        }

        /// Waits until every expected answer came; the first failure ends the wait.
        fn wait(
            &self,
            action: Action,
            pidfd: &OwnedFd,
            pid: i32,
            expected: &[Expect],
            timeout: Duration,
            success: &str,
        ) -> Outcome {
            let deadline = Instant::now().checked_add(timeout);
            let mut delivered = false;
            loop {
                if let Some(record) = self.read() {
                    let answers: Vec<(&str, &Answer, bool)> = expected
                        .iter()
                        .map(|expect| match *expect {
                            Expect::Reload(seq) => ("reload", &record.reload, record.seq > seq),
                            Expect::Reopen(seq) => {
                                ("reopen", &record.reopen, record.reopen_seq > seq)
                            }
                        })
                        .map(|(what, answer, newer)| {
                            (what, if newer { answer } else { &Answer::None }, newer)
                        })
                        .collect();
                    delivered |= answers.iter().any(|(_, _, newer)| *newer);
                    if let Some((what, Answer::Failed(message), _)) = answers
                        .iter()
                        .find(|(_, answer, _)| matches!(answer, Answer::Failed(_)))
                    {
                        // The daemon wrote this; never pass its control characters to a terminal.
                        let message: String = message
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .collect();
                        let what = if *what == "reload" {
                            "reload"
                        } else {
                            "reopen of the log files"
                        };
                        return Outcome::new(
                            action,
                            1,
                            format!("{what} failed (pid {pid}): {message}"),
                        )
                        .with_pid(pid);
                    }
                    if answers.iter().all(|(_, answer, _)| **answer == Answer::Ok) {
                        return Outcome::new(action, 0, success).with_pid(pid);
                    }
                }
                let left = deadline.map_or(Duration::MAX, |d| {
                    d.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    let what = match (delivered, action) {
                        (true, Action::Reload) => {
                            "took the reload but did not say how it went (reloaded() or reload_failed())"
                        }
                        (true, _) => "took the request to reopen its log files but did not answer",
                        (false, Action::Reload) => "did not take the reload",
                        (false, _) => "did not take the request to reopen its log files",
                    };
                    return Outcome::new(action, 1, format!("pid {pid} {what} within {timeout:?}"))
                        .with_pid(pid);
                }
                let mut fds = [
                    PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
                    PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, poll_timeout(left)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(errno) => {
                        return Outcome::new(
                            action,
                            1,
                            format!(
                                "cannot wait for pid {pid}'s answer: {}",
                                io::Error::from(errno)
                            ),
                        )
                    }
                }
                if fds[1].any() == Some(true) {
                    return Outcome::new(
                        action,
                        1,
                        format!("pid {pid} exited during the {action}"),
                    );
                }
                // Drain the events; the record is read again above.
                while let Ok(events) = self.inotify.read_events() {
                    if events.is_empty() {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    //! Elsewhere there is no `/proc/locks` to ask who holds the lock, nor pidfds: the actions say so.

    use std::time::Duration;

    use super::{Action, Outcome, Schedule, Target};

    fn unsupported(action: Action) -> Outcome {
        let code = if action == Action::Status { 4 } else { 3 };
        Outcome::new(
            action,
            code,
            format!("{action} is only supported on Linux (it needs /proc/locks and pidfds)"),
        )
    }

    pub(super) fn status(_: &Target) -> Outcome {
        unsupported(Action::Status)
    }

    pub(super) fn stop(_: &Target, _: &Schedule) -> Outcome {
        unsupported(Action::Stop)
    }

    pub(super) fn reload(_: &Target, _: Duration) -> Outcome {
        unsupported(Action::Reload)
    }

    pub(super) fn reopen_logs(_: &Target, _: nix::sys::signal::Signal, _: Duration) -> Outcome {
        unsupported(Action::ReopenLogs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_like_start_stop_daemons() {
        let s = Schedule::parse("TERM/30/KILL/5").unwrap();
        assert_eq!(
            s.items,
            [
                Item::Signal(Signal::SIGTERM),
                Item::Wait(Duration::from_secs(30)),
                Item::Signal(Signal::SIGKILL),
                Item::Wait(Duration::from_secs(5)),
            ]
        );
        assert_eq!(s.repeat_from, None);
        assert_eq!(
            Schedule::parse("5").unwrap(),
            Schedule::parse("TERM/5/KILL/5").unwrap()
        );
        assert_eq!(
            Schedule::parse("-SIGINT/0.5/-9/1").unwrap().items,
            [
                Item::Signal(Signal::SIGINT),
                Item::Wait(Duration::from_millis(500)),
                Item::Signal(Signal::SIGKILL),
                Item::Wait(Duration::from_secs(1)),
            ]
        );
        let forever = Schedule::parse("TERM/5/forever/KILL/1").unwrap();
        assert_eq!(forever.repeat_from, Some(2));
        for bad in [
            "",
            "TERM",
            "30/5",
            "TERM/x",
            "TERM/5/forever",
            "TERM/forever/5/forever/1",
            "TERM/5/-99",
            "TERM/1e3",
            "TERM/inf",
            "NOSUCH/5",
            "TERM/5/forever/KILL/0",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Schedule::parse("TERM/x").unwrap_err().contains("\"x\""));
    }

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
