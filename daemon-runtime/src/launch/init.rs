//! As PID 1 (a container's entry point) the process stays PID 1 as a minimal init and the program runs as
//! its child (sys/init.rs); once the program is gone, the init removes the pid file it left.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Step};
use crate::sys::env::SingleThread;

/// Returns in the program, PID 2; the init never returns.
pub(super) fn become_init(alone: &SingleThread, config: &Config) -> Result<(), Error> {
    let (clean_up, pid_file): (fn(&Path) -> bool, _) = match (&config.pid_file, config.pid_file_ops)
    {
        (Some(path), Some(ops)) => (ops.clean_up, Some(path.as_path())),
        _ => (|_| true, None),
    };
    crate::sys::init::become_init(alone, clean_up, pid_file)
        .map_err(|errno| Error::os(Step::Fork, None, errno))
}
