//! At start, the keys the service manager's file says it applied (`DAEMON_KEYS_APPLIED`): each is checked
//! against what the process is (its umask, ids, capabilities, limits, working directory), and left out of
//! what the runtime applies. A key the manager did not apply as the keys say fails the start, naming both
//! values: the file and the program disagree, and neither is obeyed in silence. A variable that names
//! nothing applies nothing (a hand-written unit without it: the runtime applies every key).
//!
//! Nothing here can weaken the daemon: a key is left out only once the process is as the key asks.

use std::borrow::Cow;

use super::APPLIED_ENV;
use crate::config::Config;
use crate::error::{Error, Step};

/// The configuration the runtime applies: `config` without the keys the service manager applied, once
/// they are checked.
pub(crate) fn adopt(config: &Config) -> Result<Cow<'_, Config>, Error> {
    let Some(value) = std::env::var_os(APPLIED_ENV) else {
        return Ok(Cow::Borrowed(config));
    };
    let Some(value) = value.to_str() else {
        return Err(refuse(&format!("{APPLIED_ENV} is not UTF-8")));
    };
    let keys: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Ok(Cow::Borrowed(config));
    }
    let mut adopted = config.clone();
    for key in &keys {
        check(key, config, &keys)?;
        leave_out(key, &mut adopted);
    }
    Ok(Cow::Owned(adopted))
}

fn refuse(detail: &str) -> Error {
    Error::new(Step::Config, None, None).with_detail(format!(
        "{detail}: the service manager's file and the program's keys disagree ({})",
        regenerate()
    ))
}

/// How to make the file agree again: the program's own `unit` action where it has one. Without the
/// `control` feature, `myapp unit` would start the daemon instead.
fn regenerate() -> String {
    if cfg!(feature = "control") {
        format!(
            "regenerate the file with `{} unit`",
            crate::error::program()
        )
    } else {
        "regenerate the file with a build that has the `control` feature, or remove \
         DAEMON_KEYS_APPLIED from it to have the runtime apply every key"
            .to_string()
    }
}

/// Whether the process is as `key` asks, which the manager was to make it.
fn check(key: &str, config: &Config, keys: &[&str]) -> Result<(), Error> {
    let unset = || {
        Err(refuse(&format!(
            "{APPLIED_ENV} names {key}, which the program's keys do not set"
        )))
    };
    match key {
        "umask" => {
            let found = current_umask();
            if found != config.umask {
                return differs(
                    key,
                    &format!("0o{:03o}", config.umask),
                    &format!("umask 0o{found:03o}"),
                );
            }
        }
        "workdir" => check_workdir(config)?,
        "user" if config.user.is_none() => return unset(),
        "group" if config.group.is_none() => return unset(),
        "user" | "group" => check_ids(key, config, keys)?,
        "keep_caps" if config.keep_caps.is_empty() => return unset(),
        "keep_caps" if !keys.contains(&"user") => {
            return Err(refuse(&format!(
                "{APPLIED_ENV} names keep_caps without user, whose switch they are kept across"
            )));
        }
        "keep_caps" => check_caps(config)?,
        "no_new_privs" if !config.no_new_privs => return unset(),
        "no_new_privs" if !no_new_privs() => return differs(key, "true", "no_new_privs off"),
        "nofile" => match config.nofile {
            None => return unset(),
            Some(asked) => check_nofile(asked)?,
        },
        "nice" => match config.nice {
            None => return unset(),
            Some(nice) => {
                let found = crate::sys::process::nice();
                if found != Ok(nice) {
                    let found = found.map_or_else(|e| format!("({e})"), |n| n.to_string());
                    return differs(key, &nice.to_string(), &format!("nice value {found}"));
                }
            }
        },
        "no_new_privs" => {}
        other => {
            return Err(refuse(&format!(
                "{APPLIED_ENV} names {other:?}, which is no key a service manager applies \
                 (umask, workdir, user, group, keep_caps, no_new_privs, nofile, nice)"
            )));
        }
    }
    Ok(())
}

fn differs(key: &str, asked: &str, found: &str) -> Result<(), Error> {
    Err(refuse(&format!(
        "{APPLIED_ENV} says the service manager applied {key} = {asked}, but this process has {found}"
    )))
}

/// The working directory is the configured one (the same directory, by device and inode).
fn check_workdir(config: &Config) -> Result<(), Error> {
    if config.chroot.is_some() {
        return Err(refuse(&format!(
            "{APPLIED_ENV} names workdir, which is inside the chroot the runtime enters"
        )));
    }
    if same_file(".", &config.workdir) {
        return Ok(());
    }
    let cwd =
        std::env::current_dir().map_or_else(|e| format!("({e})"), |d| d.display().to_string());
    differs(
        "workdir",
        &config.workdir.display().to_string(),
        &format!("working directory {cwd}"),
    )
}

/// The real and effective ids are the configured user's (`user`) and group's (both).
fn check_ids(key: &str, config: &Config, keys: &[&str]) -> Result<(), Error> {
    if config.user.is_some() && !keys.contains(&"user") {
        return Err(refuse(&format!(
            "{APPLIED_ENV} names group without user, which the runtime would then switch to alone"
        )));
    }
    let (uid, gid) = config.identity()?.asked();
    let ids = |real: u32, effective: u32| format!("{real} (effective {effective})");
    if let Some(uid) = uid.filter(|_| key == "user") {
        let (real, effective) = (nix::unistd::getuid(), nix::unistd::geteuid());
        if real != uid || effective != uid {
            return differs(
                key,
                &format!("{:?} (uid {uid})", config.user.as_deref().unwrap_or("")),
                &format!("uid {}", ids(real.as_raw(), effective.as_raw())),
            );
        }
    }
    if let Some(gid) = gid {
        let (real, effective) = (nix::unistd::getgid(), nix::unistd::getegid());
        if real != gid || effective != gid {
            let group = config.group.as_deref().unwrap_or("its group");
            return differs(
                key,
                &format!("{group:?} (gid {gid})"),
                &format!("gid {}", ids(real.as_raw(), effective.as_raw())),
            );
        }
    }
    Ok(())
}

/// `RLIMIT_NOFILE` is exactly `[soft, hard]`.
fn check_nofile((soft, hard): (u64, u64)) -> Result<(), Error> {
    // rlim_t is u64 on Linux and macOS, i64 on FreeBSD.
    #[allow(clippy::useless_conversion)]
    let found =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map(|(s, h)| {
            (
                u64::try_from(s).unwrap_or(u64::MAX),
                u64::try_from(h).unwrap_or(u64::MAX),
            )
        });
    if found == Ok((soft, hard)) {
        return Ok(());
    }
    let found = found.map_or_else(|e| format!("({e})"), |(s, h)| format!("soft {s} hard {h}"));
    differs(
        "nofile",
        &format!("[{soft}, {hard}]"),
        &format!("RLIMIT_NOFILE {found}"),
    )
}

/// Leaves `key` out of what the runtime applies. (`umask` and `workdir` stay: the runtime's umask(2) and
/// chdir(2) then set what is already in effect, which the check proved.)
fn leave_out(key: &str, config: &mut Config) {
    match key {
        "user" => {
            config.user = None;
            config.group = None;
            config.resolve_identity = None;
        }
        "group" => {
            config.group = None;
            if config.user.is_none() {
                config.resolve_identity = None;
            }
        }
        "keep_caps" => {
            config.keep_caps.clear();
            config.ambient_caps = false;
        }
        "no_new_privs" => config.no_new_privs = false,
        "nofile" => config.nofile = None,
        "nice" => config.nice = None,
        _ => {}
    }
}

/// The process's umask: from /proc where it says (Linux 4.7 and later), else set and set back.
fn current_umask() -> u32 {
    #[cfg(target_os = "linux")]
    if let Some(mask) = status_field("Umask").and_then(|v| u32::from_str_radix(&v, 8).ok()) {
        return mask;
    }
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    nix::sys::stat::umask(mask);
    // mode_t is u32 on Linux, u16 on macOS.
    #[allow(clippy::useless_conversion)]
    u32::from(mask.bits())
}

fn same_file(a: impl AsRef<std::path::Path>, b: impl AsRef<std::path::Path>) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(target_os = "linux")]
fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

#[cfg(target_os = "linux")]
fn no_new_privs() -> bool {
    nix::sys::prctl::get_no_new_privs().unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
fn no_new_privs() -> bool {
    false
}

/// Permitted, effective and bounding hold exactly the kept capabilities; inheritable and ambient hold them
/// with `ambient_caps`, nothing without.
#[cfg(target_os = "linux")]
fn check_caps(config: &Config) -> Result<(), Error> {
    let keep = crate::caps::CapSet::parse(&config.keep_caps)?.0;
    let ambient = if config.ambient_caps { keep } else { 0 };
    for (set, wanted) in [
        ("CapPrm", keep),
        ("CapEff", keep),
        ("CapBnd", keep),
        ("CapInh", ambient),
        ("CapAmb", ambient),
    ] {
        let found = status_field(set).and_then(|v| u64::from_str_radix(&v, 16).ok());
        if found != Some(wanted) {
            return Err(refuse(&format!(
                "{APPLIED_ENV} says the service manager applied keep_caps = {:?}{}, but this process's {set} is {} instead of {wanted:#x}",
                config.keep_caps,
                if config.ambient_caps {
                    " with ambient_caps"
                } else {
                    ""
                },
                found.map_or_else(|| "unreadable".to_string(), |f| format!("{f:#x}"))
            )));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn check_caps(_config: &Config) -> Result<(), Error> {
    Err(refuse(&format!(
        "{APPLIED_ENV} names keep_caps, but capabilities are a Linux feature"
    )))
}
