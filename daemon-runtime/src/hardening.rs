//! Hardening keys: no core dumps, `no_new_privs`, `RLIMIT_NOFILE`, the nice value, a clean environment.

use std::ffi::OsString;

use nix::sys::resource::{setrlimit, Resource};

use crate::error::{Error, Step};

/// The privilege and hardening keys of a [`Daemon`](crate::Daemon), as given.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) keep_caps: Vec<String>,
    pub(crate) ambient_caps: bool,
    pub(crate) core_dumps: bool,
    pub(crate) no_new_privs: bool,
    pub(crate) nofile: Option<(u64, u64)>,
    pub(crate) nice: Option<i32>,
    pub(crate) env: Env,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keep_caps: Vec::new(),
            ambient_caps: false,
            core_dumps: true,
            no_new_privs: false,
            nofile: None,
            nice: None,
            env: Env::Inherit,
        }
    }
}

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

/// Removes every variable `env` does not keep. `threads` is the process's thread count when known: the
/// environment is only changed while the process is single-threaded (another thread's `getenv` would
/// read freed memory).
pub(crate) fn clean_env(env: &Env, threads: Option<u64>) -> Result<(), Error> {
    if *env == Env::Inherit {
        return Ok(());
    }
    if let Some(threads) = threads.filter(|n| *n > 1) {
        return Err(
            Error::new(Step::Environment, None, None).with_detail(format!(
            "{threads} threads are running; the environment is only changed while single-threaded"
        )),
        );
    }
    let names: Vec<OsString> = std::env::vars_os().map(|(name, _)| name).collect();
    for name in names.iter().filter(|n| !env.kept(n)) {
        // The process is single-threaded (checked above, or the forked daemon), so no other thread reads
        // the environment while it changes.
        std::env::remove_var(name);
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
        // SAFETY: setpriority(2) takes integers only.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) };
        nix::errno::Errno::result(result)
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
