//! Who applies each key under a service manager: the manager (a directive in its file) or the runtime,
//! never both and never neither.
//!
//! - The limits (`umask`, `nofile`, `nice`): the manager, which sets them before the program runs, as the
//!   runtime would before anything else; the runtime checks them.
//! - The identity (`user`, `group`, `keep_caps` with `ambient_caps`, `no_new_privs`, `workdir`): one side
//!   switches, and enters the working directory as the daemon's user. The manager does it when nothing
//!   needs root first: no `privileged` code, no `chroot` (entered after the start: `RootDirectory=` would
//!   need the executable inside the jail), capabilities it can carry (systemd only as ambient ones), and
//!   every file the runtime creates before the drop in a directory the manager makes for the user
//!   (systemd's `RuntimeDirectory=` and friends). Otherwise the runtime, as it does without a manager.
//! - Everything else is the runtime's: it has no directive (the pid file's lock, reopening log files,
//!   the notify protocol, the `privileged` code, `env`), or its directive would do less (`core_dumps =
//!   false` also makes the daemon non-dumpable, which no directive does).

use std::path::{Component, Path, PathBuf};

use super::ServiceManager;
use crate::config::Config;

/// Which side switches the user, and why when it is the runtime.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) by_manager: bool,
    /// Why the runtime switches (empty when the manager does).
    pub(crate) why: String,
}

/// The directories systemd makes (and gives to `User=`) at each start, by where they live.
const MANAGED: [(&str, &str); 4] = [
    ("/run", "RuntimeDirectory"),
    ("/var/lib", "StateDirectory"),
    ("/var/cache", "CacheDirectory"),
    ("/var/log", "LogsDirectory"),
];

/// The files the runtime creates before the drop: the pid file and its lock, the log files.
pub(crate) fn files_before_drop(config: &Config) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(pid_file) = &config.pid_file {
        files.push(pid_file.clone());
        files.push(crate::pidfile::lock_path(pid_file));
    }
    files.extend(log_files(config).into_iter().map(Path::to_path_buf));
    files
}

/// The `stdout` and `stderr` files. (A journal or syslog sink is no file the runtime creates, so it
/// belongs in neither this list nor a `ReadWritePaths=`.)
pub(crate) fn log_files(config: &Config) -> Vec<&Path> {
    [&config.stdout, &config.stderr]
        .into_iter()
        .flatten()
        .filter_map(|output| output.file())
        .collect()
}

/// The systemd directive that makes `dir` at each start, and `dir` relative to that directive's root:
/// `/run/app` is `("RuntimeDirectory", "app")`.
pub(crate) fn managed_dir(dir: &Path) -> Option<(&'static str, String)> {
    MANAGED.iter().find_map(|(root, directive)| {
        let relative = dir.strip_prefix(root).ok()?;
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let text = relative.to_str()?;
        (plain && !text.is_empty()).then(|| (*directive, text.to_string()))
    })
}

/// Who switches the user under `manager`.
pub(crate) fn identity(config: &Config, manager: ServiceManager) -> Identity {
    let runtime = |why: String| Identity {
        by_manager: false,
        why,
    };
    if config.privileged {
        return runtime("the privileged code runs as root before the drop".into());
    }
    if config.chroot.is_some() {
        return runtime(
            "it enters the chroot after the start (RootDirectory= would need the executable inside the jail)"
                .into(),
        );
    }
    let switching = config.user.is_some() || config.group.is_some();
    match manager {
        ServiceManager::Systemd => {
            if !config.keep_caps.is_empty() && !config.ambient_caps {
                return runtime(
                    "systemd gives a user capabilities only as ambient ones, which ambient_caps = false keeps empty"
                        .into(),
                );
            }
            let unmanaged = files_before_drop(config)
                .into_iter()
                .find(|f| f.parent().and_then(managed_dir).is_none());
            if let Some(file) = unmanaged.filter(|_| switching) {
                return runtime(format!(
                    "it creates {} as root before the drop, in a directory systemd does not make for the user",
                    file.display()
                ));
            }
        }
        ServiceManager::Launchd => {
            if !config.keep_caps.is_empty() || config.no_new_privs {
                return runtime("launchd keeps no capabilities and sets no no_new_privs".into());
            }
            if let Some(file) = files_before_drop(config).first().filter(|_| switching) {
                return runtime(format!(
                    "it creates {} as root before the drop (launchd makes no directory for the user)",
                    file.display()
                ));
            }
        }
    }
    Identity {
        by_manager: true,
        why: String::new(),
    }
}

/// The keys the manager applies, in the keys' order: what the file's `DAEMON_KEYS_APPLIED` names.
pub(crate) fn applied(config: &Config, identity: &Identity) -> Vec<&'static str> {
    let mut keys = vec!["umask"];
    if identity.by_manager {
        keys.push("workdir");
        if config.user.is_some() {
            keys.push("user");
        }
        if config.group.is_some() {
            keys.push("group");
        }
        if !config.keep_caps.is_empty() {
            keys.push("keep_caps");
        }
        if config.no_new_privs {
            keys.push("no_new_privs");
        }
    }
    if config.nofile.is_some() {
        keys.push("nofile");
    }
    if config.nice.is_some() {
        keys.push("nice");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_directories_are_one_of_systemds_roots_below() {
        assert_eq!(
            managed_dir(Path::new("/run/app")),
            Some(("RuntimeDirectory", "app".into()))
        );
        assert_eq!(
            managed_dir(Path::new("/var/log/app/sub")),
            Some(("LogsDirectory", "app/sub".into()))
        );
        assert_eq!(managed_dir(Path::new("/run")), None);
        assert_eq!(managed_dir(Path::new("/run/../etc")), None);
        assert_eq!(managed_dir(Path::new("/running/app")), None);
        assert_eq!(managed_dir(Path::new("/tmp/app")), None);
    }
}
