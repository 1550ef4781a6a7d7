//! [`Privileged`]: a [`Daemon`] with code to run as root before the privilege drop.

#[cfg(feature = "control")]
use crate::control::Outcome;
use crate::error::{Error, Step};
use crate::launch::Entry;
use crate::running::Running;

use super::Daemon;

/// A [`Daemon`] with code to run as root before the drop, made by [`Daemon::privileged`]; [`start`]
/// returns the code's value with the [`Running`] handle.
///
/// [`start`]: Privileged::start
#[must_use = "a Privileged does nothing until start() is called"]
pub struct Privileged<F> {
    pub(super) daemon: Daemon,
    pub(super) code: F,
}

impl<F> std::fmt::Debug for Privileged<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privileged")
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Privileged<F>
where
    F: FnOnce() -> Result<T, E>,
    E: std::fmt::Display,
{
    /// Daemonizes as [`Daemon::start`] does, running the privileged code on the way; in the daemon,
    /// returns the [`Running`] handle and the code's value.
    ///
    /// # Errors
    ///
    /// As [`Daemon::start`]; also when the privileged code returns `Err` ([`Step::Privileged`], with the
    /// error's text as the detail).
    ///
    /// ```no_run
    /// let (_running, secret) = daemon_runtime::Daemon::new()
    ///     .user("nobody")
    ///     .privileged(|| std::fs::read_to_string("/etc/app/secret"))
    ///     .start()?;
    /// # drop(secret);
    /// # Ok::<(), daemon_runtime::Error>(())
    /// ```
    pub fn start(self) -> Result<(Running, T), Error> {
        self.start_at(Entry::default())
    }

    /// [`start`](Privileged::start), with what the program's entry promises (the macro's glue).
    pub(crate) fn start_at(self, entry: Entry) -> Result<(Running, T), Error> {
        let mut code = Some(self.code);
        let mut value = None;
        let mut hook = || {
            let code = code.take().ok_or_else(|| {
                Error::new(Step::Privileged, None, None).with_detail("it already ran")
            })?;
            match code() {
                Ok(v) => {
                    value = Some(v);
                    Ok(())
                }
                Err(error) => {
                    Err(Error::new(Step::Privileged, None, None).with_detail(error.to_string()))
                }
            }
        };
        let running = crate::start::start(&self.daemon.config, entry, Some(&mut hook))?;
        let value = value.ok_or_else(|| {
            Error::new(Step::Privileged, None, None).with_detail("it did not run")
        })?;
        Ok((running, value))
    }
}

#[cfg(feature = "control")]
impl<F> Privileged<F> {
    /// [`Daemon::unit`] for a daemon with privileged code, which the runtime runs before its own switch.
    ///
    /// ```no_run
    /// let daemon = daemon_runtime::Daemon::new().user("nobody").privileged(|| std::fs::read("/etc/app.key"));
    /// daemon.unit(daemon_runtime::control::ServiceManager::Systemd).exit();
    /// ```
    pub fn unit(&self, manager: crate::control::ServiceManager) -> Outcome {
        self.daemon.unit(manager)
    }

    /// [`Daemon::install`] for a daemon with privileged code.
    pub fn install(&self, force: bool) -> Outcome {
        self.daemon.install(force)
    }

    /// [`Daemon::uninstall`] for a daemon with privileged code.
    pub fn uninstall(&self) -> Outcome {
        self.daemon.uninstall()
    }
}
