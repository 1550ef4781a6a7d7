//! Readiness: the daemon tells the launcher (and systemd) that it is ready, once setup is done or when the
//! body says so ([`ready()`]); a body that fails first has its error shown by the launcher
//! ([`not_ready()`]).

use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Step};
use crate::handshake::Reporter;
use crate::systemd::notify;

/// When the launcher may exit (and systemd may consider the service started).
///
/// ```no_run
/// use daemon_runtime::{Daemon, Readiness};
///
/// let running = Daemon::new().readiness(Readiness::Manual).start()?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?; // before ready: errors reach the launcher
/// daemon_runtime::ready()?;
/// # drop((running, listener));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as daemonizing succeeded: the launcher exits 0 before the body runs.
    #[default]
    Auto,
    /// Ready when the body calls [`ready()`]. Until then the launcher waits (up to the ready timeout); if
    /// the body returns an error or panics first, the launcher prints that and exits non-zero.
    Manual,
}

/// In an upgrade, the other party that waits: `upgrade` itself, which switches to this daemon once it is
/// ready; and what to do at that moment.
pub(crate) struct Successor {
    /// The pipe `upgrade` reads.
    pub(crate) report: Reporter,
    /// Run at readiness, before anyone is told (the daemon's record in the lock file, which the
    /// successor writes only from then on).
    pub(crate) on_ready: Box<dyn FnOnce() + Send>,
}

/// How long a new daemon that is ready waits for `upgrade` to switch to it (write the pid file): a
/// moment, unless `upgrade` is stopped or gone.
const SWITCH_WAIT: Duration = Duration::from_secs(10);

impl Successor {
    /// Tells `upgrade` this daemon is ready and waits for the switch; then writes the record. A daemon
    /// `upgrade` did not switch to ends here, touching nothing of the old one's (which serves on), even
    /// when its body called [`ready()`] and would go on after an error.
    fn switch(self, launcher: Option<&Reporter>) -> Reporter {
        if !self.report.ready_for_commit(SWITCH_WAIT) {
            let error = Error::new(Step::NotReady, None, None).with_detail(
                "`upgrade` did not switch to this daemon (it exited, was stopped or gave up); the old daemon serves on",
            );
            if let Some(launcher) = launcher {
                launcher.fail_in_place(&error);
            }
            crate::sys::process::exit_now(1);
        }
        (self.on_ready)();
        self.report
    }
}

/// Who still waits for this daemon to become ready.
struct Pending {
    reporter: Option<Reporter>,
    successor: Option<Successor>,
    notify: bool,
    /// The thread that runs main's body: only its panics fail the start (a panicking task that a runtime
    /// catches on a worker thread does not). Only `manual` needs it: asking for it costs the daemon a
    /// `Thread` handle and a TLS key on its way to ready.
    main_thread: Option<std::thread::ThreadId>,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

/// Reports readiness now (`auto`), or keeps the report for [`ready()`] (`manual`).
pub(crate) fn setup_done(
    mode: Readiness,
    reporter: Option<Reporter>,
    successor: Option<Successor>,
    notify: bool,
) -> Result<(), Error> {
    let pending = Pending {
        reporter,
        successor,
        notify,
        main_thread: None,
    };
    match mode {
        Readiness::Auto => pending.ready(),
        Readiness::Manual => {
            let pending = Pending {
                main_thread: Some(std::thread::current().id()),
                ..pending
            };
            install_panic_hook();
            *PENDING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pending);
            Ok(())
        }
    }
}

impl Pending {
    fn ready(self) -> Result<(), Error> {
        let Pending {
            reporter,
            successor,
            notify,
            ..
        } = self;
        let successor = successor.map(|successor| successor.switch(reporter.as_ref()));
        // systemd first, while the launcher still waits: in fork mode it must learn the daemon's pid
        // (MAINPID=) before the launcher, the process it started, exits; in an upgrade, before the old
        // daemon is told to go, which it is once `upgrade` hears of this.
        if notify {
            let main_pid = (reporter.is_some() || successor.is_some()).then(std::process::id);
            if let Err(error) = notify::ready(main_pid) {
                for reporter in reporter.into_iter().chain(successor) {
                    reporter.fail(&error);
                }
                return Err(error);
            }
        }
        for reporter in successor.into_iter().chain(reporter) {
            reporter.ready();
        }
        Ok(())
    }

    fn fail(self, detail: &str) {
        let error = Error::new(Step::NotReady, None, None).with_detail(detail);
        if let Some(successor) = self.successor {
            // `upgrade` says why; systemd hears nothing: the old daemon, its main process, still serves.
            successor.report.fail(&error);
            if let Some(reporter) = self.reporter {
                reporter.fail(&error);
            }
            return;
        }
        match self.reporter {
            // The launcher tells systemd (it is the process systemd started).
            Some(reporter) => reporter.fail(&error),
            None if self.notify => notify::failed(&error),
            None => {}
        }
    }
}

/// Tells the launcher, and systemd under `Type=notify`, that the daemon is ready.
///
/// Needed only with [`Readiness::Manual`] (`#[daemon(readiness = "manual")]`); otherwise, and on a second call, it
/// does nothing. Call it once the daemon can serve, for example after binding its socket: the launcher
/// exits 0 only then.
///
/// ```no_run
/// use daemon_runtime::daemon;
///
/// #[daemon(readiness = "manual")]
/// fn main() -> std::io::Result<()> {
///     let listener = std::net::TcpListener::bind("127.0.0.1:7000")?; // an error here reaches the launcher
///     daemon_runtime::ready()?;
///     for stream in listener.incoming() {
///         drop(stream?);
///     }
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// Under systemd `Type=notify`, an [`Error`] of [`Step::Notify`](crate::Step::Notify) when `READY=1`
/// cannot be sent to `NOTIFY_SOCKET` (the launcher, if any, has been told already). Telling the launcher
/// cannot fail: if it is gone, nobody is left to tell.
///
/// # Platform-specific behavior
///
/// The launcher is told through a pipe on every Unix. A `NOTIFY_SOCKET` in the abstract namespace
/// (`@name`) is reachable only on Linux and Android; elsewhere such a name is taken as a path.
pub fn ready() -> Result<(), Error> {
    let pending = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match pending {
        Some(pending) => pending.ready(),
        None => Ok(()),
    }
}

/// Tells the launcher that the daemon failed before it became ready, and why: the launcher prints
/// `PROGRAM: the daemon exited before it was ready: REASON` and exits 1.
///
/// Only meaningful with [`Readiness::Manual`] before [`ready()`]; otherwise it does nothing. The attribute
/// calls it for you when `main` returns an `Err` before [`ready()`]; builder users call it themselves.
///
/// Drop the [`Running`](crate::Running) handle first, as below: the launcher exits on this report, and by
/// then the failed start should have removed its pid and lock files.
///
/// ```no_run
/// use daemon_runtime::{Daemon, Readiness};
///
/// let running = Daemon::new().readiness(Readiness::Manual).start()?;
/// match std::net::TcpListener::bind("127.0.0.1:7000") {
///     Ok(listener) => {
///         daemon_runtime::ready()?;
///         # drop(listener);
///     }
///     Err(error) => {
///         drop(running);
///         daemon_runtime::not_ready(format_args!("cannot bind 127.0.0.1:7000: {error}"));
///         std::process::exit(1);
///     }
/// }
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn not_ready(reason: impl std::fmt::Display) {
    let pending = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(pending) = pending {
        pending.fail(&reason.to_string());
    }
}

/// Asks for more time: the service manager (and, before readiness in fork mode, the launcher waiting on
/// [`ready_timeout`](crate::Daemon::ready_timeout)) waits at least `extra` from now before giving up on
/// the current start, reload or stop (`EXTEND_TIMEOUT_USEC=`). Call it again before `extra` runs out to
/// keep extending.
///
/// Under systemd this sends the message; in fork mode before [`ready()`] it tells the launcher through
/// the handshake pipe. Elsewhere it does nothing.
///
/// # Errors
///
/// Only when there is a notify socket and sending on it fails (for example `ECONNREFUSED` once the
/// service manager is gone); the error names the socket and the OS error.
///
/// ```no_run
/// use std::time::Duration;
///
/// for shard in 0..16 {
///     daemon_runtime::notify::extend_timeout(Duration::from_secs(20))?;
///     # let _ = shard; // load(shard)?;
/// }
/// daemon_runtime::ready()?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
pub fn extend_timeout(extra: std::time::Duration) -> Result<(), Error> {
    {
        let pending = PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(reporter) = pending.as_ref().and_then(|p| p.reporter.as_ref()) {
            reporter.extend(extra);
        }
    }
    notify::extend_timeout(extra)
}

/// A panic before readiness is reported to the launcher (from the hook, so that it also works with
/// `panic = "abort"`); the previous hook still runs, so the message also reaches stderr.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_main = |p: &Option<Pending>| {
            p.as_ref()
                .is_some_and(|p| p.main_thread == Some(std::thread::current().id()))
        };
        let pending = PENDING
            .try_lock()
            .ok()
            .and_then(|mut p| if on_main(&p) { p.take() } else { None });
        if let Some(pending) = pending {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(std::string::ToString::to_string)
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            let location = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            pending.fail(&format!("main panicked{location}: {message}"));
        }
        previous(info);
    }));
}
