//! [`Running`]: what the daemon holds while it runs.

use std::path::Path;

use crate::pidfile::PidFile;
use crate::signal::lifecycle;

/// The daemon's handle on what it holds: the locked pid file. Returned by [`Daemon::start`] in the daemon.
///
/// Keep it for as long as the daemon runs; dropping it removes the pid file and releases its lock.
///
/// [`Daemon::start`]: crate::Daemon::start
///
/// ```no_run
/// let running = daemon_runtime::Daemon::new().pid_file("/run/app.pid").start()?;
/// assert_eq!(running.pid_file(), Some(std::path::Path::new("/run/app.pid")));
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping Running removes the pid file and releases its lock"]
pub struct Running {
    pid_file: Option<PidFile>,
    foreground: bool,
}

impl Running {
    pub(crate) fn new(pid_file: Option<PidFile>, foreground: bool) -> Running {
        Running {
            pid_file,
            foreground,
        }
    }

    /// The absolute path of the locked pid file, if one was configured.
    ///
    /// ```no_run
    /// let running = daemon_runtime::Daemon::new().start()?;
    /// assert_eq!(running.pid_file(), None);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn pid_file(&self) -> Option<&Path> {
        self.pid_file.as_ref().map(PidFile::path)
    }

    /// Whether the process stayed in the foreground (systemd `Type=notify`, PID 1, or forced).
    ///
    /// ```no_run
    /// let running = daemon_runtime::Daemon::new().foreground(true).start()?;
    /// assert!(running.is_foreground());
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn is_foreground(&self) -> bool {
        self.foreground
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Before the fields go: the pid file is removed after the world has heard that we stop.
        lifecycle::exiting();
    }
}
