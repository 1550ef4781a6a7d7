//! The steps after the forks, in order: environment, limits, stdio, umask, user and group lookup, pid
//! file (locked; written, then closed), log files remembered for reopening, the program's privileged
//! code, supplementary groups, chroot, the working directory entered with the daemon's effective ids (so
//! a directory it may not enter fails the start), the group and user switch with the kept capabilities,
//! then the hardening that must follow the switch.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::stat::{Mode, umask};

use crate::caps::{self, CapSet};
use crate::config::Config;
use crate::error::{Error, Step};
use crate::identity;
use crate::logfile::{reopen, stdio};
use crate::pidfile::PidFile;
use crate::sink::{self, output::Output};
use crate::sys::env::SingleThread;
use crate::sys::proc_status::ProcStatus;
use crate::{hardening, threads};

/// The program's privileged code, run as root before the drop (see `Daemon::privileged`).
pub(crate) type Hook<'a> = Option<&'a mut dyn FnMut() -> Result<(), Error>>;

/// Runs the steps. On error, the pid file and its lock file are removed (dropping `PidFile`) before the
/// error is returned; after the switch, where the daemon's user may not remove them, the lock file is
/// emptied instead. `alone` proves the process runs one thread, for the environment (dropped before the
/// privileged code, which may start threads).
pub(super) fn run(
    config: &Config,
    detached: bool,
    privileged: Hook<'_>,
    alone: Option<SingleThread>,
    handed_over: Option<(OwnedFd, u32)>,
) -> Result<Option<PidFile>, Error> {
    // In the foreground the caller prints a failure on stderr: the terminal's or the service manager's,
    // not the log file or the sink the steps put there (a log file this start created is removed).
    let saved = if detached { None } else { Stdio::save() };
    let result = steps(config, detached, privileged, alone, handed_over);
    if let (Err(_), Some(saved)) = (&result, saved) {
        saved.restore();
    }
    result
}

/// Copies of fds 1 and 2 as the process got them.
struct Stdio {
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl Stdio {
    fn save() -> Option<Stdio> {
        Some(Stdio {
            stdout: std::io::stdout().as_fd().try_clone_to_owned().ok()?,
            stderr: std::io::stderr().as_fd().try_clone_to_owned().ok()?,
        })
    }

    fn restore(self) {
        let _ = nix::unistd::dup2_stdout(&self.stdout);
        let _ = nix::unistd::dup2_stderr(&self.stderr);
    }
}

fn steps(
    config: &Config,
    detached: bool,
    privileged: Hook<'_>,
    alone: Option<SingleThread>,
    handed_over: Option<(OwnedFd, u32)>,
) -> Result<Option<PidFile>, Error> {
    // Read before the environment is cleaned: whether systemd put stdio on the journal already.
    let journal_stream = sink::journal::Stream::from_env();
    // The proof goes with the environment's clean-up: nothing after it may count on one thread.
    hardening::clean_env(&config.env, alone)?;
    hardening::limits(config.core_dumps, config.nofile, config.nice)?;
    // Only a daemon that keeps capabilities runs the code that parses and keeps them.
    let keep_caps = if config.keep_caps.is_empty() {
        CapSet::default()
    } else {
        CapSet::parse(&config.keep_caps)?
    };
    // Looked up first, and the switch checked possible, before any file is created: an impossible switch
    // is said as such, not as the first file it would have failed on.
    let identity = config.identity()?;
    identity.check_possible(config.user.as_deref(), config.group.as_deref())?;
    // Dropped on a failed start: removes the log files this start created.
    let mut log_files = None;
    // Forked, stdio goes to /dev/null or the log files; in the foreground only a log file the program
    // asked for replaces the terminal's or the service manager's fd: a key applies in every mode.
    let (stdout, stderr) = (config.stdout.as_ref(), config.stderr.as_ref());
    if detached || stdout.is_some() || stderr.is_some() {
        // The journal and syslog first, before chroot and the switch: a refused socket leaves no file.
        let sinks = match config.connect_sinks {
            Some(connect) => connect(stdout, stderr, journal_stream, &identity)?,
            None => sink::Connected::default(),
        };
        let (stdout, stderr) = (stdout.and_then(Output::file), stderr.and_then(Output::file));
        if stdout.is_some() || stderr.is_some() {
            // Log files are created 0o640 exactly; the configured umask follows.
            umask(Mode::empty());
        }
        let opened = stdio::redirect_stdio(stdout, stderr, config.open_log, detached)?;
        log_files = Some(reopen::remember(opened, stdout, stderr)?);
        sinks.install()?;
    }
    umask(Mode::from_bits_truncate(config.umask as _));
    // In an upgrade, the lock the old daemon handed over; its pid file stays as it is until `upgrade`
    // writes it, once this daemon is ready.
    let pid_file = match handed_over {
        Some((lock, predecessor)) => Some(config.adopt_pid_file(lock, predecessor)?),
        None => config.acquire_pid_file()?,
    };
    if let Some(files) = &mut log_files {
        files.give_to(identity.owner())?;
    }
    if let Some(code) = privileged {
        code()?;
    }
    let per_thread = match (config.no_new_privs, keep_caps.is_empty()) {
        (true, false) => Some("no_new_privs and the bounding-set drop of keep_caps"),
        (true, true) => Some("no_new_privs"),
        (false, false) => Some("the bounding-set drop of keep_caps"),
        (false, true) => None,
    };
    if let Some(settings) = per_thread {
        // Counted now: the privileged code may have started threads.
        threads::check_alone(ProcStatus::read().as_ref(), settings)?;
    }
    identity.set_groups()?;
    if let Some(root) = &config.chroot {
        identity::chroot(root)?;
        if let Some(files) = &mut log_files {
            files.confine(root, config.reopen_logs_on.is_some())?;
        }
    }
    // Entered with the daemon's ids (a directory it cannot enter fails the start), but before the final
    // switch, so that a failure still removes the pid file as root.
    identity.as_daemon_user(|| {
        nix::unistd::chdir(&config.workdir)
            .map_err(|errno| Error::at(Step::Chdir, &config.workdir, errno))
    })?;
    if !keep_caps.is_empty() {
        caps::before_switch(keep_caps)?;
    }
    let switched = identity.switch()?;
    if !keep_caps.is_empty() {
        caps::after_switch(keep_caps, config.ambient_caps)?;
        // With capabilities back in the effective set, root must still be out of reach.
        if let Some((uid, gid)) = switched {
            identity::check_dropped(uid, gid)?;
        }
    }
    hardening::after_switch(config.core_dumps, config.no_new_privs)?;
    if let Some(files) = log_files {
        files.install();
    }
    Ok(pid_file)
}
