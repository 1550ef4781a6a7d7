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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::c_int;
use signal_hook_registry::SigId;

use crate::error::Error;
use crate::lifecycle;

/// A signal the daemon received, as an event: what it asks the daemon to do.
///
/// ```no_run
/// use daemon_runtime::{Signal, Term};
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
}

impl Signal {
    /// The signal's number (`libc::SIGHUP`, ...): `128 + number` is the exit status a death by this
    /// signal would have shown.
    ///
    /// ```
    /// use daemon_runtime::{Signal, Term};
    ///
    /// assert_eq!(Signal::Terminate(Term::Sigterm).number(), libc::SIGTERM);
    /// assert_eq!(Signal::Reload.number(), libc::SIGHUP);
    /// ```
    pub fn number(self) -> c_int {
        match self {
            Signal::Reload => libc::SIGHUP,
            Signal::Terminate(Term::Sigterm) => libc::SIGTERM,
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

/// What the signal handlers and the reading side share.
struct Shared {
    /// One flag per entry of [`KINDS`]: set by the handler, taken by the reader.
    pending: [AtomicBool; KINDS.len()],
    /// The write end of the wake-up socket pair. Owned here, so that it stays open for as long as a
    /// registered action (which holds an `Arc` of this) can still run.
    wake: OwnedFd,
}

impl Shared {
    /// The signal handler's work: only an atomic store and send(2), both async-signal-safe. No lock, no
    /// allocation, no panic (`get` instead of indexing); errno is saved and restored by the registry.
    fn raise(&self, index: usize) {
        if let Some(flag) = self.pending.get(index) {
            flag.store(true, Ordering::SeqCst);
        }
        let byte = 1u8;
        // SAFETY: send(2) of one byte from a live local on an fd this struct owns; the flags make it
        // non-blocking and keep a closed peer from raising SIGPIPE. A full buffer (EAGAIN) is fine: the
        // reader is awake already.
        unsafe {
            libc::send(
                self.wake.as_raw_fd(),
                (&raw const byte).cast(),
                1,
                SEND_FLAGS,
            )
        };
    }
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT;

/// Subscribes to SIGTERM, SIGINT and SIGHUP: from now on they are [`Signal`] events this program reads,
/// and no longer end it.
///
/// Call it in the daemon, before [`ready()`](crate::ready) with `ready = "manual"`: then no signal can
/// fall between the start and the subscription. A signal sent once the launcher has exited is always
/// delivered as an event; one that arrives before this call gets its default action (SIGTERM, SIGINT and
/// SIGHUP end the process, leaving the pid file behind). With `ready = "auto"` the launcher exits before
/// the body runs, so such a gap exists.
///
/// The iterator blocks until the next event; with the `tokio` feature, `Signals::recv` awaits it.
///
/// ```no_run
/// use daemon_runtime::{daemon, Signal};
///
/// #[daemon(pid_file = "/run/app.pid", ready = "manual")]
/// fn main() -> std::io::Result<()> {
///     let signals = daemon_runtime::signals()?; // before ready(): nothing is lost
///     daemon_runtime::ready()?;
///     for signal in signals {
///         match signal {
///             Signal::Reload => daemon_runtime::reloaded()?, // after reloading the configuration
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
        shared: Arc::new(Shared {
            pending: Default::default(),
            wake: write.into(),
        }),
        read: read.into(),
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
    reactor: Option<tokio::io::unix::AsyncFd<OwnedFd>>,
    shared: Arc<Shared>,
    /// The non-blocking read end of the wake-up socket pair.
    read: OwnedFd,
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
            Signal::Terminate(Term::Sigterm) => 0,
            Signal::Terminate(Term::Sigint) => 1,
            Signal::Reload => 2,
            Signal::User1 => 3,
            Signal::User2 => 4,
        };
        debug_assert_eq!(KINDS[index], kind);
        if kind == Signal::Reload {
            let mut counting = Ok(());
            COUNTING.call_once(|| {
                // SAFETY: the action is one atomic add (async-signal-safe, lock-free, cannot panic).
                counting = unsafe {
                    signal_hook_registry::register(kind.number(), || {
                        RELOADS_RAISED.fetch_add(1, Ordering::SeqCst);
                    })
                }
                .map(drop);
            });
            counting?;
        }
        let shared = Arc::clone(&self.shared);
        // SAFETY: the action only calls `Shared::raise`, which does an atomic store and send(2) (both
        // async-signal-safe), takes no lock, allocates nothing and cannot panic.
        let id =
            unsafe { signal_hook_registry::register(kind.number(), move || shared.raise(index)) }?;
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
        let millis = timeout.map_or(-1, |t| {
            // Round up, so that a short timeout does not spin.
            c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX)
        });
        let mut fd = libc::pollfd {
            fd: self.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd that lives for the call. EINTR and errors just return: the
        // caller looks at the flags again.
        unsafe { libc::poll(&raw mut fd, 1, millis) };
    }

    /// Empties the wake-up socket (non-blocking).
    fn drain(&self) {
        let mut buffer = [0u8; 64];
        loop {
            // SAFETY: recv(2) into a live local buffer of the given length, on the fd we own.
            let n = unsafe {
                libc::recv(
                    self.read.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            // More may be queued after a full buffer; EINTR: try again; EAGAIN (empty) or anything else:
            // done. (0, end of file, cannot happen: `Shared` keeps the write end open.)
            if n > 0 || (n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted) {
                continue;
            }
            return;
        }
    }

    /// Takes the first pending signal and tells the lifecycle hooks before the program sees it.
    fn take_pending(&self) -> Option<Signal> {
        let index = self
            .shared
            .pending
            .iter()
            .position(|flag| flag.swap(false, Ordering::SeqCst))?;
        let signal = KINDS[index];
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
        // (through `Shared`): no handler can write to a closed, possibly reused, fd.
        for (_, id) in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

#[cfg(feature = "tokio")]
impl Signals {
    /// Waits for the next event under tokio (feature `tokio`). Cancel-safe: an event is taken only when
    /// the future completes, so it can sit in a `tokio::select!` loop.
    ///
    /// Call it inside a tokio runtime with I/O enabled (`#[tokio::main]` does); the first call registers
    /// the wake-up socket with the runtime's reactor.
    ///
    /// ```no_run
    /// use daemon_runtime::{daemon, Signal};
    ///
    /// #[daemon(pid_file = "/run/app.pid", ready = "manual")]
    /// #[tokio::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let mut signals = daemon_runtime::signals()?;
    ///     daemon_runtime::ready()?;
    ///     loop {
    ///         match signals.recv().await? {
    ///             Signal::Reload => daemon_runtime::reloaded()?,
    ///             Signal::Terminate(_) => return Ok(()),
    ///             _ => {}
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// If the reactor refuses the socket (out of memory).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as every tokio I/O type does.
    pub async fn recv(&mut self) -> io::Result<Signal> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Signals::recv), for wrapping `Signals` in a `Stream` or a future of
    /// your own (feature `tokio`).
    ///
    /// # Errors
    ///
    /// As [`recv`](Signals::recv).
    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<Signal>> {
        use std::task::Poll;
        loop {
            if let Some(signal) = self.try_recv() {
                return Poll::Ready(Ok(signal));
            }
            if self.reactor.is_none() {
                let duplicate = self.read.try_clone()?;
                // SAFETY: the AsyncFd owns `duplicate` (an OwnedFd), so the fd stays open and names the
                // same socket for as long as the AsyncFd exists.
                let fd = unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        duplicate,
                        tokio::io::Interest::READABLE,
                    )
                }?;
                self.reactor = Some(fd);
            }
            let Some(reactor) = &self.reactor else {
                unreachable!("set just above")
            };
            match reactor.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                // Cleared before the next drain: a byte written after it makes the fd ready again.
                Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
            }
        }
    }
}

/// Acknowledges the reload the last [`Signal::Reload`] asked for: it is done and the daemon runs with the
/// new configuration. With the `control` commands, `myapp reload` waits for this; under systemd it
/// becomes `READY=1`.
///
/// Without a reload waiting to be acknowledged (none delivered, or already acknowledged) it does
/// nothing. A SIGHUP that arrived during the reload is a new Reload event after this one.
///
/// Acknowledge a reload before taking the next event: the acknowledgement carries no number and answers
/// the latest Reload delivered, so a reload finished late (in a task spawned per event) would answer a
/// newer one that is still running. With several [`Signals`], each receives the Reload event, but one
/// SIGHUP is one numbered reload: answer it from the subscription that does the reloading.
///
/// ```no_run
/// # fn reload_configuration() -> std::io::Result<()> { Ok(()) }
/// # let mut signals = daemon_runtime::signals()?;
/// if let Some(daemon_runtime::Signal::Reload) = signals.next() {
///     match reload_configuration() {
///         Ok(()) => daemon_runtime::reloaded()?,
///         Err(error) => daemon_runtime::reload_failed(format_args!("cannot reload: {error}"))?,
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// If telling a waiting party fails (the systemd notify socket refuses the message).
pub fn reloaded() -> Result<(), Error> {
    lifecycle::reload_done(Ok(()))
}

/// Acknowledges the reload the last [`Signal::Reload`] asked for as failed, with the reason: the daemon
/// keeps running (with its previous configuration, if the program kept it). `myapp reload` prints the
/// reason and exits non-zero; under systemd it becomes `STATUS=` and `READY=1`.
///
/// Without a reload waiting to be acknowledged it does nothing.
///
/// ```no_run
/// daemon_runtime::reload_failed("config.toml line 3: unknown key `prot`")?;
/// # Ok::<(), daemon_runtime::Error>(())
/// ```
///
/// # Errors
///
/// As [`reloaded()`].
pub fn reload_failed(reason: impl fmt::Display) -> Result<(), Error> {
    lifecycle::reload_done(Err(&reason.to_string()))
}
