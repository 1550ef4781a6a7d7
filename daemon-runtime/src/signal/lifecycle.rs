//! The daemon's life after start, as the outside world may want to hear of it: the moments the signal API
//! and the end of `main` pass through, in one place, so that each channel that reports them (the systemd
//! notify socket, the record `myapp reload` waits on) adds its lines here and nowhere else.
//!
//! Every hook runs in the program's own thread (the one that reads the events or returns from `main`),
//! never in a signal handler: they may lock, allocate and make any system call.
//!
//! The reload handshake: a Reload event gets the next number and is "pending" from the moment it is handed
//! to the program until the program calls `reloaded()` or `reload_failed()`. The number is taken, and
//! [`reload_delivered`] runs, before the program sees the event and so before it starts reloading: whoever
//! changed the configuration, read the current number and then sent SIGHUP can wait for a finished record
//! with a greater number, and that reload read the configuration after the change. SIGHUPs that arrive
//! while a reload runs are merged into one more Reload event after it (a later number), never lost.

use std::sync::{Mutex, MutexGuard};

use crate::error::Error;

/// What the runtime knows of the program's reloads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reloads {
    /// Reload events handed to the program so far (the number of the latest one).
    pub(crate) delivered: u64,
    /// The number of the reload the program has not acknowledged yet, if any.
    pub(crate) pending: Option<u64>,
    /// Whether the program receives Reload/Terminate as events (a [`crate::Signals`] was made).
    pub(crate) subscribed: bool,
}

static RELOADS: Mutex<Reloads> = Mutex::new(Reloads {
    delivered: 0,
    pending: None,
    subscribed: false,
});

fn state() -> MutexGuard<'static, Reloads> {
    // A panic while the lock was held left plain integers behind: still consistent.
    RELOADS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A snapshot of the reload state, for hooks and tests.
#[allow(dead_code)]
pub(crate) fn reloads() -> Reloads {
    *state()
}

/// The program now receives SIGHUP, SIGTERM and SIGINT as events: sending SIGHUP no longer kills it.
/// Runs once the signal handlers are installed.
#[allow(
    clippy::unnecessary_wraps,
    reason = "the record `myapp reload` reads is written here, and that can fail"
)]
pub(crate) fn subscribed() -> Result<(), Error> {
    state().subscribed = true;
    // systemd: nothing to say.
    crate::pidfile::record::subscribed();
    Ok(())
}

/// A Reload event is about to be handed to the program: it gets the next number and is pending until
/// acknowledged. Returns that number.
pub(crate) fn reload_delivered() -> u64 {
    let number = {
        let mut state = state();
        state.delivered += 1;
        state.pending = Some(state.delivered);
        state.delivered
    };
    // systemd (`Type=notify-reload`, or `ExecReload=kill -HUP $MAINPID` under `Type=notify`): reloading
    // since now, a time taken after the signal arrived, which is how systemd tells this reload from an
    // earlier one.
    crate::systemd::notify::reloading();
    crate::pidfile::record::reload_delivered();
    number
}

/// The program acknowledged the pending reload (`reloaded()`: `Ok`, `reload_failed(reason)`: `Err`).
/// Without a pending reload this does nothing.
#[allow(
    clippy::unnecessary_wraps,
    reason = "the notify message and the reload record are sent here, and that can fail"
)]
pub(crate) fn reload_done(result: Result<(), &str>) -> Result<(), Error> {
    let Some(number) = state().pending.take() else {
        return Ok(());
    };
    // systemd: `READY=1` ends the reload either way (the daemon keeps running on the old configuration
    // after a failure), with `STATUS=` saying why it failed.
    let _ = number;
    crate::systemd::notify::reload_done(result);
    crate::pidfile::record::reload_done(result);
    Ok(())
}

/// A Terminate event (SIGTERM or SIGINT) is about to be handed to the program.
pub(crate) fn terminating() {
    stopping();
}

/// `main` returned (the [`crate::Running`] handle is being dropped; the pid file is still there).
pub(crate) fn exiting() {
    stopping();
}

/// systemd hears `STOPPING=1` once; never from a daemon an upgrade replaced, whose successor is the
/// service's main process now (with `NotifyAccess=all` systemd would take it for the service's).
fn stopping() {
    if !crate::pidfile::handover::superseded() {
        crate::systemd::notify::stopping_once();
    }
}

/// Acknowledges the reload the last [`Signal::Reload`](super::Signal::Reload) asked for: it is done and the daemon runs with the
/// new configuration. With the `control` commands, `myapp reload` waits for this; under systemd it
/// becomes `READY=1`.
///
/// Without a reload waiting to be acknowledged (none delivered, or already acknowledged) it does
/// nothing. A SIGHUP that arrived during the reload is a new Reload event after this one.
///
/// Acknowledge a reload before taking the next event: the acknowledgement carries no number and answers
/// the latest Reload delivered, so a reload finished late (in a task spawned per event) would answer a
/// newer one that is still running. With several [`Signals`](super::Signals), each receives the Reload event, but one
/// SIGHUP is one numbered reload: answer it from the subscription that does the reloading.
///
/// ```no_run
/// # fn reload_configuration() -> std::io::Result<()> { Ok(()) }
/// # let mut signals = daemon_runtime::signals()?;
/// if let Some(daemon_runtime::Signal::Reload) = signals.next() {
///     match reload_configuration() {
///         Ok(()) => daemon_runtime::signal::reloaded()?,
///         Err(error) => daemon_runtime::signal::reload_failed(format_args!("cannot reload: {error}"))?,
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// If telling a waiting party fails (the systemd notify socket refuses the message).
pub fn reloaded() -> Result<(), Error> {
    reload_done(Ok(()))
}

/// Acknowledges the reload the last [`Signal::Reload`](super::Signal::Reload) asked for as failed, with the reason: the daemon
/// keeps running (with its previous configuration, if the program kept it). `myapp reload` prints the
/// reason and exits non-zero; under systemd it becomes `STATUS=` and `READY=1`.
///
/// Without a reload waiting to be acknowledged it does nothing.
///
/// ```no_run
/// daemon_runtime::signal::reload_failed("config.toml line 3: unknown key `prot`")?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
///
/// # Errors
///
/// As [`reloaded()`].
pub fn reload_failed(reason: impl std::fmt::Display) -> Result<(), Error> {
    reload_done(Err(&reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state is process-wide: these steps run as one test so that no other test interleaves.
    #[test]
    fn reloads_are_numbered_and_acknowledged_once() {
        *state() = Reloads::default();
        assert_eq!(
            reload_done(Ok(())).ok(),
            Some(()),
            "nothing pending: a no-op"
        );
        assert_eq!(reloads().pending, None);

        subscribed().unwrap();
        assert!(reloads().subscribed);

        assert_eq!(reload_delivered(), 1);
        assert_eq!(reloads().pending, Some(1));
        reload_done(Ok(())).unwrap();
        assert_eq!(reloads().pending, None);
        reload_done(Err("twice")).unwrap();
        assert_eq!(
            reloads().delivered,
            1,
            "a second acknowledgement changes nothing"
        );

        // A reload delivered before the previous one was acknowledged supersedes it.
        assert_eq!(reload_delivered(), 2);
        assert_eq!(reload_delivered(), 3);
        assert_eq!(reloads().pending, Some(3));
        reload_done(Err("bad config")).unwrap();
        assert_eq!(
            reloads(),
            Reloads {
                delivered: 3,
                pending: None,
                subscribed: true
            }
        );
    }
}
