//! The OS layer: every call into the C library, every raw system call, the assembly of the shared-memory
//! intermediate process, and signal handlers. It is the only module of the crate allowed `unsafe` code
//! (with the macro's glue, `__private`): each function here is a safe wrapper that makes its one unsafe
//! operation sound by what it checks, or by a token its caller holds. A promise only the program's entry
//! can make is a token that only the glue creates ([`fd::CloseAll`], [`threads::Trust`]); one thread in
//! the process is [`env::SingleThread`], made by a fork or by a count of the threads.
//!
//! It imports nothing of the crate: failures come back as `Errno` or `io::Error`, and the phases turn them
//! into the step that failed. Where is ...?
//!
//! | what | where |
//! |---|---|
//! | `close_range`, `close`, `fcntl`, `dup2`, adopting an inherited fd | [`fd`] |
//! | `setenv`/`unsetenv` (the single-thread contract) | [`env`] |
//! | `fork`, `_exit`, pidfds, `setpriority`, `CLOCK_MONOTONIC` | [`process`] |
//! | the PID 1 init's signals and reaping (`sigwaitinfo`, `kill`, `waitpid`) | [`init`] |
//! | `sigaction` (and the raw `rt_sigaction`), the signal mask, holding a signal back, handlers | [`signal`] |
//! | counting threads (`unshare`, `proc_pidinfo`, `sysctl`) | [`threads`] |
//! | `capget`, `capset`, `prctl` for capabilities | [`caps`] |
//! | `initgroups`, `setgroups` where nix has none | [`user`] |
//! | `getsockopt`, `getsockname` | [`io`] |
//! | what `/proc/self/status` says: threads, ignored signals, the fd table | [`proc_status`] |
//! | registering the signal API's socket with tokio's reactor | `reactor` (feature `tokio`) |
//! | reopening the log files onto stdout and stderr (in a signal handler too) | [`reopen`] |
//! | the syslog relay's process (double fork, its descriptors and signals), the local time | [`relay`] |
//! | `clone(CLONE_VM | CLONE_VFORK)`, rseq | `intermediate` (x86-64 Linux) |

pub(crate) mod caps;
pub(crate) mod env;
pub(crate) mod fd;
#[cfg(target_os = "linux")]
pub(crate) mod init;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) mod intermediate;
pub(crate) mod io;
pub(crate) mod proc_status;
pub(crate) mod process;
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
pub(crate) mod relay;
pub(crate) mod reopen;
pub(crate) mod signal;
pub(crate) mod threads;
pub(crate) mod user;
