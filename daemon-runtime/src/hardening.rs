//! Hardening keys: no core dumps, `no_new_privs`, `RLIMIT_NOFILE`, the nice value, a clean environment.
//! (Kept capabilities are caps.rs, the user switch identity.rs.)

use std::ffi::OsString;

use nix::sys::resource::{Resource, setrlimit};

use crate::error::{Error, Step};
use crate::sys::env::SingleThread;

/// What the daemon's environment keeps (daemon(7) step 4).
///
/// ```
/// use daemon_runtime::{Daemon, Env};
///
/// let daemon = Daemon::new().env(Env::keep(["RUST_LOG", "HOME"]));
/// # drop(daemon);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Env {
    /// The environment stays as the launcher had it (the default).
    #[default]
    Inherit,
    /// Only what systemd passes and what every program expects: [`Env::ALWAYS_KEPT`].
    Clean,
    /// [`Env::ALWAYS_KEPT`] and these names.
    Keep(Vec<String>),
}

impl Env {
    /// What `Clean` and `Keep` always keep: `NOTIFY_SOCKET`, `LISTEN_*`, `WATCHDOG_*` (systemd's protocol),
    /// `PATH`, `LANG`, `TZ`. A trailing `*` is a prefix.
    pub const ALWAYS_KEPT: &'static [&'static str] = &[
        "NOTIFY_SOCKET",
        "LISTEN_*",
        "WATCHDOG_*",
        "PATH",
        "LANG",
        "TZ",
    ];

    /// [`Env::Keep`] with these names.
    pub fn keep<I, S>(names: I) -> Env
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Env::Keep(names.into_iter().map(Into::into).collect())
    }

    fn kept(&self, name: &OsString) -> bool {
        let Some(name) = name.to_str() else {
            return false;
        };
        let extra: &[String] = match self {
            Env::Keep(names) => names,
            _ => &[],
        };
        let matches = |pattern: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        Env::ALWAYS_KEPT.iter().any(|p| matches(p)) || extra.iter().any(|p| matches(p))
    }
}

/// Removes every variable `env` does not keep. The environment is only changed while the process runs
/// one thread (another thread's `getenv` would read freed memory): `alone` proves it; without it (a
/// foreground process that runs several), a clean environment is refused.
pub(crate) fn clean_env(env: &Env, alone: Option<SingleThread>) -> Result<(), Error> {
    if *env == Env::Inherit {
        return Ok(());
    }
    let Some(alone) = alone else {
        return Err(Error::new(Step::Environment, None, None).with_detail(
            "several threads are running; the environment is only changed while single-threaded",
        ));
    };
    let names: Vec<OsString> = std::env::vars_os().map(|(name, _)| name).collect();
    for name in names.iter().filter(|n| !env.kept(n)) {
        alone.remove_var(name);
    }
    Ok(())
}

/// Resource limits and the nice value, set first while the process is still root (raising a hard limit
/// or lowering the nice value needs it), so that the privileged code runs under them too.
pub(crate) fn limits(
    core_dumps: bool,
    nofile: Option<(u64, u64)>,
    nice: Option<i32>,
) -> Result<(), Error> {
    if !core_dumps {
        setrlimit(Resource::RLIMIT_CORE, 0, 0)
            .map_err(|errno| Error::os(Step::Limit, Some("RLIMIT_CORE 0".to_string()), errno))?;
        set_dumpable_off()?;
    }
    if let Some((soft, hard)) = nofile {
        // rlim_t is signed on FreeBSD: a limit that does not fit is "infinity" there.
        let limit = |n: u64| nix::libc::rlim_t::try_from(n).unwrap_or(nix::libc::RLIM_INFINITY);
        setrlimit(Resource::RLIMIT_NOFILE, limit(soft), limit(hard)).map_err(|errno| {
            Error::os(
                Step::Limit,
                Some(format!("RLIMIT_NOFILE soft {soft} hard {hard}")),
                errno,
            )
        })?;
    }
    if let Some(nice) = nice {
        crate::sys::process::set_nice(nice)
            .map_err(|errno| Error::os(Step::Nice, Some(nice.to_string()), errno))?;
    }
    Ok(())
}

/// After the user switch (which resets the dumpable flag to `fs.suid_dumpable`): not dumpable again, and
/// `no_new_privs` (exec can never grant privileges: setuid bits and file capabilities are ignored).
pub(crate) fn after_switch(core_dumps: bool, no_new_privs: bool) -> Result<(), Error> {
    if !core_dumps {
        set_dumpable_off()?;
    }
    if no_new_privs {
        set_no_new_privs()?;
    }
    Ok(())
}

/// The syslog relay's hardening (sink/mod.rs): not dumpable, so that the daemon's user cannot ptrace it
/// (it runs outside the daemon's chroot), and `no_new_privs`.
pub(crate) fn relay_hardening() -> Result<(), Error> {
    set_dumpable_off()?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    set_no_new_privs()?;
    Ok(())
}

/// `PR_SET_DUMPABLE 0`: no core file, no ptrace by the same user, /proc/PID owned by root.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_dumpable_off() -> Result<(), Error> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|errno| Error::os(Step::Harden, Some("PR_SET_DUMPABLE 0".to_string()), errno))
}

/// Elsewhere `RLIMIT_CORE` 0 is what there is.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_dumpable_off() -> Result<(), Error> {
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_no_new_privs() -> Result<(), Error> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(|errno| Error::os(Step::Harden, Some("PR_SET_NO_NEW_PRIVS".to_string()), errno))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_no_new_privs() -> Result<(), Error> {
    Err(
        Error::new(Step::Harden, Some("no_new_privs".to_string()), None)
            .with_detail("no_new_privs is a Linux feature"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_systemd_and_basics_and_the_list() {
        let clean = Env::Clean;
        for name in [
            "NOTIFY_SOCKET",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "WATCHDOG_USEC",
            "PATH",
            "TZ",
            "LANG",
        ] {
            assert!(clean.kept(&OsString::from(name)), "{name}");
        }
        for name in ["HOME", "LD_PRELOAD", "LISTEN", "PATHX"] {
            assert!(!clean.kept(&OsString::from(name)), "{name}");
        }
        let keep = Env::keep(["HOME", "RUST_*"]);
        assert!(keep.kept(&OsString::from("HOME")));
        assert!(keep.kept(&OsString::from("RUST_LOG")));
        assert!(!keep.kept(&OsString::from("LD_PRELOAD")));
    }
}
