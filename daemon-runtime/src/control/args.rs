//! The program's arguments without the action word `commands = true` consumed.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when `commands` consumed the program's first argument (an action word): see [`args_os`].
static CONSUMED_ACTION: AtomicBool = AtomicBool::new(false);

/// Says that the first argument was an action word, which [`args_os`] leaves out from now on.
pub(crate) fn consume_action() {
    CONSUMED_ACTION.store(true, Ordering::Relaxed);
}

/// The program's arguments (as [`std::env::args_os`]), without the action word that `commands = true`
/// consumed.
///
/// With `commands = true`, `myapp start --verbose` and `myapp --verbose` both start the daemon, and in the
/// daemon `std::env::args_os()` still shows the process's real command line (`start` included: the kernel's
/// argv cannot be changed), while this function shows `myapp --verbose` in both cases. A first argument
/// that is not an action word is left to the program and is not removed.
///
/// ```
/// let args: Vec<_> = daemon_runtime::control::args_os().collect();
/// assert!(!args.is_empty());
/// ```
pub fn args_os() -> impl Iterator<Item = OsString> {
    let skip = CONSUMED_ACTION.load(Ordering::Relaxed);
    std::env::args_os()
        .enumerate()
        .filter(move |(i, _)| !(skip && *i == 1))
        .map(|(_, arg)| arg)
}

/// The program's arguments as `String`s (as [`std::env::args`]), without the action word that
/// `commands = true` consumed: see [`args_os`].
///
/// An argument that is not valid Unicode ends the process with `PROGRAM: argument N is not valid
/// UTF-8: ARG` on stderr and exit code 2 (an invalid command line, as LSB counts it), where
/// `std::env::args` would panic; use [`args_os`] to take such arguments.
///
/// ```
/// let args: Vec<String> = daemon_runtime::control::args().collect();
/// assert!(!args.is_empty());
/// ```
pub fn args() -> impl Iterator<Item = String> {
    args_os().enumerate().map(|(index, arg)| {
        arg.into_string().unwrap_or_else(|arg| {
            eprintln!(
                "{}: argument {index} is not valid UTF-8: {}",
                crate::error::program(),
                arg.to_string_lossy()
            );
            std::process::exit(2)
        })
    })
}
