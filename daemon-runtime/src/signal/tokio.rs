//! `Signals::recv().await` for programs running tokio (feature `tokio`): the wake-up socket registered
//! with the runtime's reactor.

use std::io;

use super::{Signal, Signals};

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
    /// #[daemon(pid_file = "/run/app.pid", readiness = "manual")]
    /// #[tokio::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let mut signals = daemon_runtime::signals()?;
    ///     daemon_runtime::ready()?;
    ///     loop {
    ///         match signals.recv().await? {
    ///             Signal::Reload => daemon_runtime::signal::reloaded()?,
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
                self.reactor = Some(crate::sys::reactor::readable(duplicate)?);
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
