//! The signal API: SIGTERM, SIGINT and SIGHUP (SIGUSR1, SIGUSR2 on request) as events the program reads,
//! blocking or async, and the reload acknowledgement.
//!
//! Built on signal-hook-registry, the handler table `tokio::signal` and `signal-hook` share: each
//! registers an action for a signal and the registry runs them all, so a program may use any of them
//! beside this API. Our action sets a flag and writes one byte to a socket pair (both async-signal-safe);
//! the reading side drains the socket, then takes the flags. Each signal is one flag: several SIGHUPs
//! before the program reads are one Reload event, and a SIGHUP during a reload is one more event after it.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::sys::signal::{SigId, Wake, register_counter, register_wake, unregister};

pub(crate) mod lifecycle;
#[cfg(feature = "tokio")]
mod tokio;

pub use lifecycle::{reload_failed, reloaded};

/// A signal the daemon received, as an event: what it asks the daemon to do.
///
/// ```no_run
/// use daemon_runtime::signal::{Signal, Term};
///
/// # fn f(signal: Signal) -> i32 {
/// match signal {
///     Signal::Reload => 0,
///     Signal::Terminate(Term::Sigterm) => 143, // 128 + 15, what a death by SIGTERM reports
///     Signal::Terminate(Term::Sigint) => 130,
///     _ => 1,
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGHUP: reload the configuration (what `systemctl reload` and logrotate's `postrotate` send), then
    /// call [`reloaded()`] or [`reload_failed()`].
    Reload,
    /// SIGTERM (`kill`, `systemctl stop`, `docker stop`) or SIGINT (Ctrl-C): stop. Return from `main` to
    /// remove the pid file.
    Terminate(Term),
    /// SIGUSR1, when subscribed with [`Signals::with_user1`].
    User1,
    /// SIGUSR2, when subscribed with [`Signals::with_user2`].
    User2,
}

/// Which signal asked the daemon to terminate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// SIGTERM: a service manager or `kill` asks the daemon to stop.
    Sigterm,
    /// SIGINT: Ctrl-C on the terminal the process runs on (foreground, or `docker run -it`).
    Sigint,
    /// SIGTERM from `myapp upgrade`, once the new daemon is ready and serves on the same listening
    /// sockets: stop accepting (drop or close the listeners), finish the work in flight within the stop
    /// schedule's time, and return from `main`. The pid file and the lock are the new daemon's now: the
    /// runtime leaves them, and sends systemd no `STOPPING=1`.
    Upgraded,
}

impl Signal {
    /// The signal's number (`libc::SIGHUP`, ...): `128 + number` is the exit status a death by this
    /// signal would have shown.
    ///
    /// ```
    /// use daemon_runtime::signal::{Signal, Term};
    ///
    /// assert_eq!(Signal::Terminate(Term::Sigterm).number(), libc::SIGTERM);
    /// assert_eq!(Signal::Reload.number(), libc::SIGHUP);
    /// ```
    pub fn number(self) -> c_int {
        match self {
            Signal::Reload => libc::SIGHUP,
            Signal::Terminate(Term::Sigterm | Term::Upgraded) => libc::SIGTERM,
            Signal::Terminate(Term::Sigint) => libc::SIGINT,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
        }
    }
}

/// The signals a [`Signals`] can carry, in the order pending ones are handed out: a request to stop is
/// never kept waiting behind a reload.
const KINDS: [Signal; 5] = [
    Signal::Terminate(Term::Sigterm),
    Signal::Terminate(Term::Sigint),
    Signal::Reload,
    Signal::User1,
    Signal::User2,
];

/// SIGHUPs delivered to the process, counted once per delivery by one action of its own (registered
/// before any subscription's), whatever the number of subscriptions: the reload number.
static RELOADS_RAISED: AtomicUsize = AtomicUsize::new(0);
/// The highest reload number already handed to the lifecycle hooks: with several subscriptions, each
/// takes every Reload, but one SIGHUP is one reload for `reload_delivered` (and for `myapp reload`).
static RELOADS_DELIVERED: AtomicUsize = AtomicUsize::new(0);
/// Registers the counting action once.
static COUNTING: std::sync::Once = std::sync::Once::new();

/// Subscribes to SIGTERM, SIGINT and SIGHUP: from now on they are [`Signal`] events this program reads,
/// and no longer end it.
///
/// Call it in the daemon, before [`ready()`](crate::ready) with `readiness = "manual"`: then no signal can
/// fall between the start and the subscription. A signal sent once the launcher has exited is always
/// delivered as an event; one that arrives before this call gets its default action (SIGTERM, SIGINT and
/// SIGHUP end the process, leaving the pid file behind). With `readiness = "auto"` the launcher exits before
/// the body runs, so such a gap exists.
///
/// The iterator blocks until the next event; with the `tokio` feature, `Signals::recv` awaits it.
///
/// ```no_run
/// use daemon_runtime::{daemon, Signal};
///
/// #[daemon(pid_file = "/run/app.pid", readiness = "manual")]
/// fn main() -> std::io::Result<()> {
///     let signals = daemon_runtime::signals()?; // before ready(): nothing is lost
///     daemon_runtime::ready()?;
///     for signal in signals {
///         match signal {
///             Signal::Reload => daemon_runtime::signal::reloaded()?, // after reloading the configuration
///             Signal::Terminate(_) => break,
///             _ => {}
///         }
///     }
///     Ok(()) // the pid file is removed
/// }
/// ```
///
/// Each call makes an independent subscription: every [`Signals`] receives every signal it subscribed
/// to, and so do `tokio::signal` and `signal-hook` handlers in the same program. Dropping a [`Signals`]
/// unsubscribes it, but the signal does not get its default action back (the registry keeps its handler
/// installed): a program that stops reading SIGTERM no longer dies of it.
///
/// # Errors
///
/// If a handler cannot be installed or the wake-up socket pair cannot be made (out of fds).
pub fn signals() -> io::Result<Signals> {
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    let mut signals = Signals {
        #[cfg(feature = "tokio")]
        reactor: None,
        wake: Arc::new(Wake::new(KINDS.len(), write.into())),
        read,
        ids: Vec::new(),
    };
    for kind in [
        Signal::Terminate(Term::Sigterm),
        Signal::Terminate(Term::Sigint),
        Signal::Reload,
    ] {
        signals.subscribe(kind)?;
    }
    lifecycle::subscribed().map_err(io::Error::from)?;
    Ok(signals)
}

/// A subscription to signals, read as [`Signal`] events: a blocking iterator, [`Signals::try_recv`],
/// [`Signals::recv_timeout`], an fd for your own event loop ([`AsFd`]), or with the `tokio` feature
/// `Signals::recv`. Made by [`signals()`].
pub struct Signals {
    /// A duplicate of `read`, registered with tokio's reactor on the first `recv`.
    #[cfg(feature = "tokio")]
    reactor: Option<::tokio::io::unix::AsyncFd<UnixStream>>,
    /// One flag per entry of [`KINDS`], set by the handlers, and the write end of the wake-up socket pair.
    wake: Arc<Wake>,
    /// The non-blocking read end of the wake-up socket pair.
    read: UnixStream,
    /// What this subscription registered, to unregister it on drop.
    ids: Vec<(Signal, SigId)>,
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subscribed: Vec<Signal> = self.ids.iter().map(|(kind, _)| *kind).collect();
        f.debug_struct("Signals")
            .field("subscribed", &subscribed)
            .finish_non_exhaustive()
    }
}

impl Signals {
    /// Also receive SIGUSR1 as [`Signal::User1`] (it then no longer ends the process).
    ///
    /// ```no_run
    /// let signals = daemon_runtime::signals()?.with_user1()?;
    /// # drop(signals);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// If the handler cannot be installed.
    pub fn with_user1(mut self) -> io::Result<Signals> {
        self.subscribe(Signal::User1)?;
        Ok(self)
    }

    /// Also receive SIGUSR2 as [`Signal::User2`] (it then no longer ends the process).
    ///
    /// ```no_run
    /// let signals = daemon_runtime::signals()?.with_user2()?;
    /// # drop(signals);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// If the handler cannot be installed.
    pub fn with_user2(mut self) -> io::Result<Signals> {
        self.subscribe(Signal::User2)?;
        Ok(self)
    }

    fn subscribe(&mut self, kind: Signal) -> io::Result<()> {
        let index = match kind {
            // Told apart when read (an upgrade's SIGTERM), registered as SIGTERM.
            Signal::Terminate(Term::Sigterm | Term::Upgraded) => 0,
            Signal::Terminate(Term::Sigint) => 1,
            Signal::Reload => 2,
            Signal::User1 => 3,
            Signal::User2 => 4,
        };
        debug_assert_eq!(KINDS[index], kind);
        if kind == Signal::Reload {
            let mut counting = Ok(());
            COUNTING.call_once(|| {
                counting = register_counter(kind.number(), &RELOADS_RAISED).map(drop);
            });
            counting?;
        }
        let id = register_wake(kind.number(), Arc::clone(&self.wake), index)?;
        self.ids.push((kind, id));
        Ok(())
    }

    /// The next pending event, without waiting.
    ///
    /// ```no_run
    /// let mut signals = daemon_runtime::signals()?;
    /// while let Some(signal) = signals.try_recv() {
    ///     println!("{signal:?}");
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&mut self) -> Option<Signal> {
        // Drain first, then take: a signal whose byte comes after the drain wakes the next wait.
        self.drain();
        self.take_pending()
    }

    /// The next event, waiting at most `timeout` for one.
    ///
    /// ```no_run
    /// let mut signals = daemon_runtime::signals()?;
    /// loop {
    ///     match signals.recv_timeout(std::time::Duration::from_secs(1)) {
    ///         Some(daemon_runtime::Signal::Terminate(_)) => break,
    ///         Some(_) => {}
    ///         None => { /* a second of periodic work */ }
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Signal> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(signal) = self.try_recv() {
                return Some(signal);
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return None;
            }
            self.wait_readable(Some(left));
        }
    }

    /// Waits until the wake-up socket is readable (or `timeout` passes, or poll is interrupted).
    fn wait_readable(&self, timeout: Option<Duration>) {
        // Rounded up, so that a short timeout does not spin; a long one is waited in steps.
        let timeout = timeout.map_or(PollTimeout::NONE, |t| {
            let millis = t.as_nanos().div_ceil(1_000_000);
            PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX))
        });
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        // EINTR and errors just return: the caller looks at the flags again.
        let _ = poll(&mut fds, timeout);
    }

    /// Empties the wake-up socket (non-blocking).
    fn drain(&self) {
        let mut buffer = [0u8; 64];
        loop {
            // More may be queued after a full buffer; EINTR: try again; WouldBlock (empty) or anything
            // else: done. (End of file cannot happen: `Wake` keeps the write end open.) Never blocking,
            // even if the program cleared O_NONBLOCK on the descriptor `AsFd` handed it.
            match crate::sys::io::recv_now(self.read.as_fd(), &mut buffer) {
                Ok(n) if n > 0 => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                _ => return,
            }
        }
    }

    /// Takes the first pending signal and tells the lifecycle hooks before the program sees it.
    fn take_pending(&self) -> Option<Signal> {
        let index = (0..KINDS.len()).find(|index| self.wake.take(*index))?;
        let mut signal = KINDS[index];
        // SIGTERM after an upgrade switched to the new daemon: the pid file names it now.
        if signal == Signal::Terminate(Term::Sigterm) && crate::pidfile::handover::superseded() {
            signal = Signal::Terminate(Term::Upgraded);
        }
        match signal {
            Signal::Reload => {
                // The counting action ran before this subscription's (the registry runs a signal's
                // actions in the order they were registered), so the number is this delivery's or newer.
                let number = RELOADS_RAISED.load(Ordering::SeqCst);
                if RELOADS_DELIVERED.fetch_max(number, Ordering::SeqCst) < number {
                    lifecycle::reload_delivered();
                }
            }
            Signal::Terminate(_) => lifecycle::terminating(),
            Signal::User1 | Signal::User2 => {}
        }
        Some(signal)
    }
}

/// Blocks until the next event. Never ends: break out of the loop on [`Signal::Terminate`].
impl Iterator for Signals {
    type Item = Signal;

    fn next(&mut self) -> Option<Signal> {
        loop {
            if let Some(signal) = self.try_recv() {
                return Some(signal);
            }
            self.wait_readable(None);
        }
    }
}

/// Readable when an event may be pending: for a `poll`/`epoll` loop of your own. When it is, call
/// [`Signals::try_recv`] until it returns `None`.
impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // The registry drops an action only once no handler runs it, and the action owns the write end
        // (through `Wake`): no handler can write to a closed, possibly reused, fd.
        for (_, id) in self.ids.drain(..) {
            unregister(id);
        }
    }
}
