//! What a service manager's file is written for: the manager, the program, its stop schedule; and the
//! file for a configuration (systemd.rs, launchd.rs).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use super::{launchd, systemd};
use crate::config::Config;

/// The service manager a file is written for, as `myapp unit [systemd|launchd]` names it.
///
/// ```
/// use daemon_runtime::control::ServiceManager;
///
/// assert_eq!("launchd".parse::<ServiceManager>(), Ok(ServiceManager::Launchd));
/// assert_eq!(ServiceManager::Systemd.to_string(), "systemd");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceManager {
    /// A systemd service unit (`NAME.service`).
    Systemd,
    /// A launchd property list (`/Library/LaunchDaemons/NAME.plist`).
    Launchd,
}

impl ServiceManager {
    /// This platform's: launchd on Apple's systems, systemd elsewhere.
    ///
    /// ```
    /// # use daemon_runtime::control::ServiceManager;
    /// #[cfg(target_os = "linux")]
    /// assert_eq!(ServiceManager::native(), ServiceManager::Systemd);
    /// ```
    pub fn native() -> ServiceManager {
        if cfg!(target_vendor = "apple") {
            ServiceManager::Launchd
        } else {
            ServiceManager::Systemd
        }
    }

    /// The word on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceManager::Systemd => "systemd",
            ServiceManager::Launchd => "launchd",
        }
    }
}

impl fmt::Display for ServiceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceManager {
    type Err = String;

    fn from_str(word: &str) -> Result<ServiceManager, String> {
        match word {
            "systemd" => Ok(ServiceManager::Systemd),
            "launchd" => Ok(ServiceManager::Launchd),
            other => Err(format!(
                "unknown service manager {other:?}: expected systemd or launchd"
            )),
        }
    }
}

/// What a file needs besides the keys: the program itself, and how its stop schedule reads.
#[derive(Debug)]
pub(crate) struct Facts {
    /// The executable's absolute path, as the file names it.
    pub(crate) exe: String,
    /// The executable's file name: the unit's name, the label.
    pub(crate) name: String,
    /// The `stop_retry` schedule.
    pub(crate) stop: Stop,
}

/// The stop schedule, as far as a service manager can use it.
#[derive(Debug)]
pub(crate) struct Stop {
    /// As configured (or the default), for the comments.
    pub(crate) text: String,
    /// The signal it sends first, as systemd names it (`SIGTERM`).
    pub(crate) first_signal: String,
    /// How long it waits for the exit after that signal.
    pub(crate) first_wait: Duration,
    /// How long one pass of the schedule waits in all; `None` when it repeats `forever`.
    pub(crate) total: Option<Duration>,
}

/// The running program: its executable's absolute path and file name. The path is checked to name this
/// very executable (a binary replaced or deleted since it started would give the unit another program).
pub(crate) fn program() -> Result<(String, String), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this program's executable: {e}"))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        let running = std::fs::metadata("/proc/self/exe");
        let named = std::fs::metadata(&exe);
        let same = matches!((&running, &named), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino());
        if !same {
            return Err(format!(
                "{} is no longer this program's executable (it was replaced or removed since the program started): run the program as it is now",
                exe.display()
            ));
        }
    }
    let name = exe
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    match (exe.to_str(), name) {
        (Some(path), Some(name)) if exe.is_absolute() => Ok((path.to_string(), name)),
        _ => Err(format!(
            "this program's executable {} is not an absolute UTF-8 path, which a service file can name",
            exe.display()
        )),
    }
}

/// The file for `manager`, for this configuration.
pub(crate) fn render(
    manager: ServiceManager,
    config: &Config,
    facts: &Facts,
) -> Result<String, String> {
    match manager {
        ServiceManager::Systemd => systemd::render(config, facts),
        ServiceManager::Launchd => launchd::render(config, facts),
    }
}

/// A key's value as the attribute writes it, for the comments: `0o027`, `"/var/lib/app"`.
pub(super) fn shown(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
