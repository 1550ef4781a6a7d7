//! `unit`, `install` and `uninstall`: the service manager's file for this program, from its keys (see the
//! unit module), printed or put in place.

use super::schedule::{self, Item};
use super::{Action, Outcome};
use crate::config::Config;
use crate::unit::{self, Facts, ServiceManager, Stop};

/// `unit`: see [`Daemon::unit`](crate::Daemon::unit).
pub(crate) fn unit(config: &Config, manager: ServiceManager) -> Outcome {
    let facts = match facts(config, Action::Unit) {
        Ok(facts) => facts,
        Err(outcome) => return outcome,
    };
    match unit::render(manager, config, &facts) {
        Ok(text) => Outcome::new(Action::Unit, 0, text),
        Err(why) => Outcome::new(
            Action::Unit,
            1,
            format!("cannot write the {manager} file: {why}"),
        ),
    }
}

/// `install`: see [`Daemon::install`](crate::Daemon::install).
#[cfg(target_os = "linux")]
pub(crate) fn install(config: &Config, force: bool) -> Outcome {
    systemd_action(config, Action::Install, |name, exe, text| {
        unit::install(name, exe, text, force)
    })
}

/// `uninstall`: see [`Daemon::uninstall`](crate::Daemon::uninstall).
#[cfg(target_os = "linux")]
pub(crate) fn uninstall(config: &Config) -> Outcome {
    systemd_action(config, Action::Uninstall, |name, _, text| {
        unit::uninstall(name, text)
    })
}

/// Runs `act` on the program's name and systemd unit, where systemd runs and the caller is root.
#[cfg(target_os = "linux")]
fn systemd_action(
    config: &Config,
    action: Action,
    act: impl FnOnce(&str, &str, &str) -> Result<String, (u8, String)>,
) -> Outcome {
    let facts = match facts(config, action) {
        Ok(facts) => facts,
        Err(outcome) => return outcome,
    };
    let done = unit::check_host(&facts.name)
        .and_then(|()| {
            unit::render(ServiceManager::Systemd, config, &facts)
                .map_err(|why| (1, format!("cannot write the systemd unit: {why}")))
        })
        .and_then(|text| act(&facts.name, &facts.exe, &text));
    match done {
        Ok(message) => Outcome::new(action, 0, message),
        Err((code, message)) => Outcome::new(action, code, format!("cannot {action}: {message}")),
    }
}

/// Elsewhere there is no systemd to install into: `unit` prints the file for this system.
#[cfg(not(target_os = "linux"))]
pub(crate) fn install(_config: &Config, _force: bool) -> Outcome {
    unsupported(Action::Install)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn uninstall(_config: &Config) -> Outcome {
    unsupported(Action::Uninstall)
}

#[cfg(not(target_os = "linux"))]
fn unsupported(action: Action) -> Outcome {
    Outcome::new(
        action,
        3,
        format!(
            "{action} is only supported on Linux, under systemd (`{} unit` prints the file for this system)",
            crate::error::program()
        ),
    )
}

/// The program and its stop schedule, as the files need them.
fn facts(config: &Config, action: Action) -> Result<Facts, Outcome> {
    // What `start` would refuse (a relative path, say) is no file to write either: the builder's
    // `unit()` comes here without a start.
    config
        .check()
        .map_err(|error| Outcome::new(action, 2, error.to_string()))?;
    let (exe, name) = unit::program().map_err(|why| Outcome::new(action, 1, why))?;
    let parsed = schedule::of(config).map_err(|why| Outcome::new(action, 2, why))?;
    let first = parsed
        .items
        .iter()
        .position(|i| matches!(i, Item::Signal(_)));
    let first_signal = first
        .and_then(|at| match parsed.items[at] {
            Item::Signal(signal) => Some(signal.as_str().to_string()),
            Item::Wait(_) => None,
        })
        .unwrap_or_else(|| "SIGTERM".to_string());
    let first_wait =
        first
            .and_then(|at| parsed.items.get(at + 1))
            .map_or(std::time::Duration::ZERO, |item| match item {
                Item::Wait(wait) => *wait,
                Item::Signal(_) => std::time::Duration::ZERO,
            });
    let stop = Stop {
        text: config
            .stop_retry
            .clone()
            .unwrap_or_else(|| schedule::DEFAULT_STOP_RETRY.to_string()),
        first_signal,
        first_wait,
        total: parsed.repeat_from.is_none().then(|| parsed.total_wait()),
    };
    Ok(Facts { exe, name, stop })
}
