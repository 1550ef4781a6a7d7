//! The one error type: which step failed, the path or name involved, and the OS error.

use std::fmt;
use std::io;

/// The step of daemonization that failed. Each step reads as the start of a sentence in [`Error`]'s
/// `Display`: `cannot change directory to /var/lib/app: No such file or directory (os error 2)`.
///
/// ```
/// use daemon_runtime::{Error, Step};
///
/// let error = Error::new(Step::Chdir, Some("/var/lib/app".into()), Some(2));
/// assert_eq!(error.step(), Step::Chdir);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// The configuration given to the builder is invalid (the detail says why).
    Config,
    /// The process runs more than one thread, so it cannot fork safely.
    Threads,
    /// Closing the inherited file descriptors.
    CloseFds,
    /// Resetting signal dispositions and the signal mask.
    Signals,
    /// Creating the pipe the daemon reports on.
    Pipe,
    /// The first or second fork.
    Fork,
    /// Creating a new session.
    Setsid,
    /// Opening `/dev/null` for stdio.
    DevNull,
    /// Opening the file configured for stdout.
    Stdout,
    /// Opening the file configured for stderr.
    Stderr,
    /// Redirecting stdin, stdout or stderr.
    Stdio,
    /// Opening, locking or writing the pid file.
    PidFile,
    /// Another live daemon holds the pid file (the subject names its pid).
    AlreadyRunning,
    /// Looking up the user to run as.
    User,
    /// Looking up the group to run as.
    Group,
    /// chroot(2).
    Chroot,
    /// chdir(2) to the working directory.
    Chdir,
    /// Setting the supplementary groups.
    Groups,
    /// setgid(2).
    Setgid,
    /// setuid(2).
    Setuid,
    /// After dropping privileges, root could still be regained.
    RegainRoot,
    /// Telling systemd the service is ready (`NOTIFY_SOCKET`).
    Notify,
    /// Reading the daemon's report in the launcher.
    Handshake,
    /// The daemon exited, or its body failed, before it reported ready.
    NotReady,
    /// The daemon did not report ready within the launcher's timeout.
    Timeout,
}

impl Step {
    /// Every step, in declaration order; the index is the step's code in the handshake record.
    const ALL: [Step; 25] = [
        Step::Config,
        Step::Threads,
        Step::CloseFds,
        Step::Signals,
        Step::Pipe,
        Step::Fork,
        Step::Setsid,
        Step::DevNull,
        Step::Stdout,
        Step::Stderr,
        Step::Stdio,
        Step::PidFile,
        Step::AlreadyRunning,
        Step::User,
        Step::Group,
        Step::Chroot,
        Step::Chdir,
        Step::Groups,
        Step::Setgid,
        Step::Setuid,
        Step::RegainRoot,
        Step::Notify,
        Step::Handshake,
        Step::NotReady,
        Step::Timeout,
    ];

    pub(crate) fn code(self) -> u8 {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }

    pub(crate) fn from_code(code: u8) -> Option<Step> {
        Step::ALL.get(usize::from(code)).copied()
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
        }
    }
}

/// Why daemonizing failed: the [`Step`], the path or name involved, the OS error, and a detail.
///
/// In the launcher, an `Error` is what the daemon reported over the handshake pipe, rebuilt with the same
/// text. Its `Display` is one line meant for a terminal:
///
/// ```
/// use daemon_runtime::{Error, Step};
///
/// let error = Error::new(Step::Chdir, Some("/var/lib/app".into()), Some(2));
/// assert_eq!(
///     error.to_string(),
///     "cannot change directory to /var/lib/app: No such file or directory (os error 2)"
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
    ///
    /// ```
    /// use daemon_runtime::{Error, Step};
    ///
    /// let error = Error::new(Step::Fork, None, Some(11));
    /// assert_eq!(error.to_string(), "cannot fork: Resource temporarily unavailable (os error 11)");
    /// ```
    pub fn new(step: Step, subject: Option<String>, errno: Option<i32>) -> Error {
        Error {
            step,
            subject,
            errno,
            detail: None,
        }
    }

    /// Adds a detail, shown after the subject (for example the pid of the daemon that is already running).
    ///
    /// ```
    /// use daemon_runtime::{Error, Step};
    ///
    /// let error = Error::new(Step::Config, None, None).with_detail("umask 0o1000 is above 0o777");
    /// assert_eq!(error.to_string(), "invalid daemon configuration: umask 0o1000 is above 0o777");
    /// ```
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
    /// # use daemon_runtime::{Error, Step};
    /// assert_eq!(Error::new(Step::Setsid, None, Some(1)).step(), Step::Setsid);
    /// ```
    pub fn step(&self) -> Step {
        self.step
    }

    /// The path or name the step was about, if any.
    ///
    /// ```
    /// # use daemon_runtime::{Error, Step};
    /// let error = Error::new(Step::Chroot, Some("/srv/jail".into()), Some(2));
    /// assert_eq!(error.subject(), Some("/srv/jail"));
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The detail, if any.
    ///
    /// ```
    /// # use daemon_runtime::{Error, Step};
    /// assert_eq!(Error::new(Step::Config, None, None).with_detail("x").detail(), Some("x"));
    /// ```
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The OS error, if the step failed in a system call.
    ///
    /// ```
    /// # use daemon_runtime::{Error, Step};
    /// let error = Error::new(Step::Chdir, Some("/x".into()), Some(2));
    /// assert_eq!(error.os_error().unwrap().kind(), std::io::ErrorKind::NotFound);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_code(step.code()), Some(step));
        }
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
