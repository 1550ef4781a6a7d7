//! The start, which `Daemon::start`, `Privileged::start` and `#[daemon]` call: the configuration checked,
//! a command word acted on, the mode chosen (forked, or the foreground), then the launch and the setup.

use crate::config::Config;
use crate::error::{Error, Step};
use crate::launch::{self, Entry};
use crate::running::Running;
use crate::setup::{self, Hook};
use crate::systemd::notify;

/// The environment variable that chooses foreground or background at run time, without recompiling, over
/// what the program and the environment say: `DAEMON_FOREGROUND=1` (or `true`, `yes`, `on`) keeps the
/// process attached to the terminal with stdio untouched (but for `stdout`/`stderr` files), for
/// debugging; `DAEMON_FOREGROUND=0` (or `false`, `no`, `off`) forks even when `NOTIFY_SOCKET` is set (a
/// `Type=forking` unit with `NotifyAccess=` or `WatchdogSec=`). Another value is a launch error. As PID 1
/// the process never daemonizes (the launcher's exit would end the container): it stays PID 1 as a
/// minimal init and the program runs as its child, in the foreground.
///
/// ```
/// assert_eq!(daemon_runtime::FOREGROUND_ENV, "DAEMON_FOREGROUND");
/// ```
pub const FOREGROUND_ENV: &str = "DAEMON_FOREGROUND";

/// Starts the daemon `config` describes: returns in the daemon (or the process itself, in the
/// foreground); the launcher exits 0 once the daemon is ready, or gets the error.
pub(crate) fn start(config: &Config, entry: Entry, privileged: Hook<'_>) -> Result<Running, Error> {
    let result = daemonize(config, entry, privileged);
    if let Err(error) = &result {
        // Under systemd, the journal and `systemctl status` say why, in the launcher's words; but for an
        // upgrade's new daemon, whose failure `upgrade` reports while the old daemon serves on.
        if !launch::upgrading() {
            notify::failed(error);
        }
    }
    result
}

fn daemonize(config: &Config, entry: Entry, privileged: Hook<'_>) -> Result<Running, Error> {
    config.check()?;
    if let Some(run_command) = config.commands {
        run_command(config);
    }
    if runs_in_foreground(config)? {
        let attached = launch::foreground(config, entry)?;
        let pid_file = setup::foreground(config, attached, privileged)?;
        Ok(Running::new(pid_file, true))
    } else {
        let detached = launch::background(config, entry)?;
        let pid_file = setup::daemon(config, detached, privileged);
        Ok(Running::new(pid_file, false))
    }
}

/// Foreground as PID 1 (forking would end the container when the launcher exits); else as
/// [`FOREGROUND_ENV`] says; else as the program said; else under systemd's `NOTIFY_SOCKET`.
fn runs_in_foreground(config: &Config) -> Result<bool, Error> {
    let forced = match std::env::var_os(FOREGROUND_ENV) {
        None => None,
        Some(value) => match value.to_str().unwrap_or("?").to_ascii_lowercase().as_str() {
            "" => None,
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => {
                return Err(Error::new(Step::Config, None, None).with_detail(format!(
                    "{FOREGROUND_ENV}={} is neither 1, true, yes, on (foreground) nor 0, false, no, off (fork)",
                    value.to_string_lossy()
                )))
            }
        },
    };
    if std::process::id() == 1 {
        return Ok(true);
    }
    Ok(forced
        .or(config.foreground)
        .unwrap_or_else(|| notify::socket().is_some()))
}
