//! The one error type: which step failed, the path or name involved, and the OS error.

use std::fmt;
use std::io;

/// The step of daemonization that failed. Each step reads as the start of a sentence in [`Error`]'s
/// `Display`: `cannot change directory to /var/lib/app: No such file or directory (os error 2)`.
///
/// Each step's discriminant is its code in the record that carries an error from the daemon to the
/// launcher.
///
/// ```
/// use daemon_runtime::{Daemon, Step};
///
/// let error = Daemon::new().umask(0o1000).start().unwrap_err();
/// assert_eq!(error.step(), Step::Config);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Step {
    /// The configuration given to the builder is invalid (the detail says why).
    Config = 0,
    /// The process runs more than one thread, so it cannot fork safely.
    Threads = 1,
    /// Closing the inherited file descriptors.
    CloseFds = 2,
    /// Resetting signal dispositions and the signal mask.
    Signals = 3,
    /// Creating the pipe the daemon reports on.
    Pipe = 4,
    /// The first or second fork.
    Fork = 5,
    /// Creating a new session.
    Setsid = 6,
    /// Opening `/dev/null` for stdio.
    DevNull = 7,
    /// Opening the file configured for stdout.
    Stdout = 8,
    /// Opening the file configured for stderr.
    Stderr = 9,
    /// Redirecting stdin, stdout or stderr.
    Stdio = 10,
    /// Opening, locking or writing the pid file.
    PidFile = 11,
    /// Another live daemon holds the pid file (the subject names its pid).
    AlreadyRunning = 12,
    /// Looking up the user to run as.
    User = 13,
    /// Looking up the group to run as.
    Group = 14,
    /// chroot(2).
    Chroot = 15,
    /// chdir(2) to the working directory.
    Chdir = 16,
    /// Setting the supplementary groups.
    Groups = 17,
    /// setgid(2).
    Setgid = 18,
    /// setuid(2).
    Setuid = 19,
    /// After dropping privileges, root could still be regained.
    RegainRoot = 20,
    /// Telling systemd the service is ready (`NOTIFY_SOCKET`).
    Notify = 21,
    /// Reading the daemon's report in the launcher.
    Handshake = 22,
    /// The daemon exited, or its body failed, before it reported ready.
    NotReady = 23,
    /// The daemon did not report ready within the launcher's timeout.
    Timeout = 24,
    /// Opening, checking or locking the pid file's lock file (`<pid_file>.lock`).
    LockFile = 25,
    /// The program's privileged code (run as root before the drop) returned an error.
    Privileged = 26,
    /// Keeping, or dropping, capabilities across the user switch.
    Capabilities = 27,
    /// Setting a resource limit (`RLIMIT_CORE`, `RLIMIT_NOFILE`).
    Limit = 28,
    /// Setting the nice value.
    Nice = 29,
    /// Making the process non-dumpable, or setting `no_new_privs`.
    Harden = 30,
    /// Cleaning the environment.
    Environment = 31,
    /// Reopening a log file (after rotation).
    ReopenLogs = 32,
    /// The user or group switch is impossible for this process (checked before any file is touched).
    Switch = 33,
    /// Connecting stdout or stderr to the journal or syslog (`stderr = "journal"`, `"syslog"`).
    Sink = 34,
}

impl Step {
    /// The step's code in the handshake record: its discriminant.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The step whose code is `code`; `None` for a code no step has (a newer or corrupted record).
    pub(crate) fn from_code(code: u8) -> Option<Step> {
        // Every step, once: a step left out here fails `step_codes_round_trip`'s exhaustive match.
        let step = match code {
            0 => Step::Config,
            1 => Step::Threads,
            2 => Step::CloseFds,
            3 => Step::Signals,
            4 => Step::Pipe,
            5 => Step::Fork,
            6 => Step::Setsid,
            7 => Step::DevNull,
            8 => Step::Stdout,
            9 => Step::Stderr,
            10 => Step::Stdio,
            11 => Step::PidFile,
            12 => Step::AlreadyRunning,
            13 => Step::User,
            14 => Step::Group,
            15 => Step::Chroot,
            16 => Step::Chdir,
            17 => Step::Groups,
            18 => Step::Setgid,
            19 => Step::Setuid,
            20 => Step::RegainRoot,
            21 => Step::Notify,
            22 => Step::Handshake,
            23 => Step::NotReady,
            24 => Step::Timeout,
            25 => Step::LockFile,
            26 => Step::Privileged,
            27 => Step::Capabilities,
            28 => Step::Limit,
            29 => Step::Nice,
            30 => Step::Harden,
            31 => Step::Environment,
            32 => Step::ReopenLogs,
            33 => Step::Switch,
            34 => Step::Sink,
            _ => return None,
        };
        Some(step)
    }

    /// The start of the sentence; the subject (a path or a name) follows it.
    fn phrase(self) -> &'static str {
        match self {
            Step::Config => "invalid daemon configuration",
            Step::Threads => "cannot daemonize a multi-threaded process",
            Step::CloseFds => "cannot close inherited file descriptors",
            Step::Signals => "cannot reset signals",
            Step::Pipe => "cannot create the pipe to the daemon",
            Step::Fork => "cannot fork",
            Step::Setsid => "cannot create a new session",
            Step::DevNull => "cannot open",
            Step::Stdout => "cannot open stdout file",
            Step::Stderr => "cannot open stderr file",
            Step::Stdio => "cannot redirect standard I/O",
            Step::PidFile => "cannot use pid file",
            Step::AlreadyRunning => "already running",
            Step::User => "cannot look up user",
            Step::Group => "cannot look up group",
            Step::Chroot => "cannot change root to",
            Step::Chdir => "cannot change directory to",
            Step::Groups => "cannot set supplementary groups of",
            Step::Setgid => "cannot set group id to",
            Step::Setuid => "cannot set user id to",
            Step::RegainRoot => {
                "privileges were not dropped: root could be regained after switching to"
            }
            Step::Notify => "cannot notify systemd at",
            Step::Handshake => "cannot read the daemon's report",
            Step::NotReady => "the daemon exited before it was ready",
            Step::Timeout => "the daemon did not report ready within",
            Step::LockFile => "cannot use lock file",
            Step::Privileged => "the privileged code failed",
            Step::Capabilities => "cannot keep capabilities",
            Step::Limit => "cannot set resource limit",
            Step::Nice => "cannot set nice value",
            Step::Harden => "cannot harden the process with",
            Step::Environment => "cannot clean the environment",
            Step::ReopenLogs => "cannot reopen log file",
            Step::Switch => "cannot switch to",
            Step::Sink => "cannot connect",
        }
    }
}

/// Why daemonizing failed: the [`Step`], the path or name involved, the OS error, and a detail.
///
/// In the launcher, an `Error` is what the daemon reported over the handshake pipe, rebuilt with the same
/// text. Its `Display` is one line meant for a terminal:
///
/// ```
/// use daemon_runtime::Daemon;
///
/// let error = Daemon::new().umask(0o1000).start().unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "invalid daemon configuration: umask 0o1000 is out of range (0 to 0o777)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    step: Step,
    subject: Option<String>,
    errno: Option<i32>,
    detail: Option<String>,
}

impl Error {
    /// An error of `step` about `subject` (a path or a name), with the OS error number `errno`.
    pub(crate) fn new(step: Step, subject: Option<String>, errno: Option<i32>) -> Error {
        Error {
            step,
            subject,
            errno,
            detail: None,
        }
    }

    /// Adds a detail, shown after the subject (for example why a file was refused).
    ///
    /// ```
    /// use daemon_runtime::Daemon;
    ///
    /// let error = Daemon::new().umask(0o1000).start().unwrap_err().with_detail("see --help");
    /// assert_eq!(error.to_string(), "invalid daemon configuration: see --help");
    /// ```
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    pub(crate) fn os(
        step: Step,
        subject: impl Into<Option<String>>,
        errno: nix::errno::Errno,
    ) -> Error {
        Error::new(step, subject.into(), Some(errno as i32))
    }

    pub(crate) fn at(step: Step, path: &std::path::Path, errno: nix::errno::Errno) -> Error {
        Error::os(step, Some(path.display().to_string()), errno)
    }

    /// The step that failed.
    ///
    /// ```
    /// # use daemon_runtime::{Daemon, Step};
    /// assert_eq!(Daemon::new().workdir("").start().unwrap_err().step(), Step::Config);
    /// ```
    pub fn step(&self) -> Step {
        self.step
    }

    /// The path or name the step was about, if any.
    ///
    /// ```
    /// # use daemon_runtime::Daemon;
    /// // A configuration error is about no path in particular.
    /// assert_eq!(Daemon::new().workdir("").start().unwrap_err().subject(), None);
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The detail, if any.
    ///
    /// ```
    /// # use daemon_runtime::Daemon;
    /// let error = Daemon::new().workdir("").start().unwrap_err();
    /// assert_eq!(error.detail(), Some("workdir is an empty path"));
    /// ```
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The OS error, if the step failed in a system call.
    ///
    /// ```
    /// # use daemon_runtime::Daemon;
    /// // A configuration error involves no system call.
    /// assert!(Daemon::new().workdir("").start().unwrap_err().os_error().is_none());
    /// ```
    pub fn os_error(&self) -> Option<io::Error> {
        self.errno.map(io::Error::from_raw_os_error)
    }

    pub(crate) fn errno(&self) -> Option<i32> {
        self.errno
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.step.phrase())?;
        if let Some(subject) = &self.subject {
            write!(f, " {subject}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(error) = self.os_error() {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        let kind = error.os_error().map_or(io::ErrorKind::Other, |e| e.kind());
        io::Error::new(kind, error)
    }
}

/// The name the program was started as, for `PROGRAM: MESSAGE` lines; the executable's file name when it
/// was started with an empty `argv[0]` (`exec -a ''`), so that a message never starts with `: `.
pub(crate) fn program() -> String {
    let name = |path: &std::path::Path| {
        let name = path.file_name().unwrap_or(path.as_os_str());
        (!name.is_empty()).then(|| name.to_string_lossy().into_owned())
    };
    let arg0 = std::env::args_os().next().unwrap_or_default();
    name(std::path::Path::new(&arg0))
        .or_else(|| std::env::current_exe().ok().as_deref().and_then(name))
        .unwrap_or_else(|| "daemon".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        let mut known = 0;
        for code in 0..=u8::MAX {
            if let Some(step) = Step::from_code(code) {
                assert_eq!(step.code(), code);
                known += 1;
            }
        }
        // The codes are the discriminants 0, 1, 2...: the last step's code is the count minus one.
        assert_eq!(known, usize::from(Step::Sink.code()) + 1);
        assert_eq!(Step::from_code(200), None);
    }

    #[test]
    fn display_reads_like_a_sentence() {
        let e = Error::new(Step::AlreadyRunning, None, None).with_detail("pid 42 holds /run/a.pid");
        assert_eq!(e.to_string(), "already running: pid 42 holds /run/a.pid");
        let e = Error::new(Step::DevNull, Some("/dev/null".into()), Some(13));
        assert_eq!(
            e.to_string(),
            "cannot open /dev/null: Permission denied (os error 13)"
        );
    }

    #[test]
    fn converts_to_io_error() {
        let e: io::Error = Error::new(Step::Chdir, Some("/x".into()), Some(2)).into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/x"));
    }
}
