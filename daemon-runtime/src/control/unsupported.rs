//! Elsewhere there is no `/proc/locks` to ask who holds the lock, nor pidfds: the actions say so.

use std::time::Duration;

use super::outcome::Outcome;
use super::schedule::Schedule;
use super::{Action, Target};

fn unsupported(action: Action) -> Outcome {
    let code = if action == Action::Status { 4 } else { 3 };
    Outcome::new(
        action,
        code,
        format!("{action} is only supported on Linux (it needs /proc/locks and pidfds)"),
    )
}

pub(super) fn status(_: &Target) -> Outcome {
    unsupported(Action::Status)
}

pub(super) fn stop(_: &Target, _: &Schedule) -> Outcome {
    unsupported(Action::Stop)
}

pub(super) fn reload(_: &Target, _: Duration) -> Outcome {
    unsupported(Action::Reload)
}

pub(super) fn reopen_logs(_: &Target, _: nix::sys::signal::Signal, _: Duration) -> Outcome {
    unsupported(Action::ReopenLogs)
}

pub(super) fn upgrade(
    _: &Target,
    _: Option<Vec<std::ffi::OsString>>,
    _: &Schedule,
    _: Duration,
) -> Outcome {
    unsupported(Action::Upgrade)
}
