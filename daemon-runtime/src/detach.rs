//! The run-time flow: prepare in the launcher, fork, setsid, fork again, set the daemon up, report.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use crate::error::{Error, Step};
use crate::handshake::{self, Report, Reporter};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use crate::intermediate::{self, Failure, Side};
use crate::pidfile::PidFile;
use crate::privileges;
use crate::proc_status::ProcStatus;
use crate::{
    caps, fds, hardening, listen, logs, notify, ready, signals, threads, watchdog, Daemon, Running,
};

/// The program's privileged code, run as root before the drop (see `Daemon::privileged`).
pub(crate) type Hook<'a> = Option<&'a mut dyn FnMut() -> Result<(), Error>>;

/// How long a daemon that missed the ready timeout gets to exit after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The longest the daemon waits for the intermediate process to exit (it exits right after its fork).
const PARENT_EXIT_WAIT: Duration = Duration::from_secs(10);

/// Daemonizes: returns in the daemon; in the launcher, exits 0 once the daemon is ready or returns why not.
pub(crate) fn background(config: &Daemon, privileged: Hook<'_>) -> Result<Running, Error> {
    // /proc/self/status, read only from procfs; without it threads.rs asks the kernel another way.
    let (status, threads) = launch_status(config);
    threads::check(threads, config.threads)?;
    // What the program printed and stdout still buffers must not be printed again by the children. At the
    // program's entry nothing was printed, and asking would set stdout up for nothing.
    if !config.scope.is_all() {
        let _ = std::io::stdout().flush();
    }
    fds::close_inherited(&config.keep_fds, config.scope, status.map(|s| s.fd_table))?;
    // Still single-threaded: the systemd variables can leave the environment. Socket activation is for
    // the foreground; a forking daemon binds its own sockets (the passed fds were closed just above).
    listen::discard_env();
    notify::open()?;
    // Asked here, where the answer is at hand: in the daemon it would cost a page of its own.
    let notify = notify::active();
    watchdog::take_env();
    signals::reset(status.map(|s| s.ignored))?;
    let hup = signals::hold_hup()?;
    let result = fork_daemon(config, &hup, notify, privileged);
    if result.is_err() {
        // Only the launcher gets here with an error: give it back the SIGHUP disposition it had. (The
        // daemon restored its own before reporting ready.)
        let _ = signals::restore_hup(&hup);
    }
    result
}

/// What the launch reads from `/proc/self/status` (`None` where it does without, or cannot), and the
/// thread count when known. At the program's entry (`#[daemon]` on a binary's root `main`) the read is
/// skipped when the fd table is known to be small (fds.rs, `table_is_small`: one `close_range` closes
/// every fd) and one system call says a single thread runs (threads.rs). Only the ignored signals are
/// left, asked one `sigaction` each, which costs less than having the kernel print the whole file (about
/// 20 µs less on the way to ready, see BENCHMARKS.md).
fn launch_status(config: &Daemon) -> (Option<ProcStatus>, Option<u64>) {
    // Only where the thread count is known without /proc: a seccomp filter that refuses `unshare`
    // (Docker's default) would leave it to the caller's word, where /proc can still count.
    if config.scope.is_all()
        && config.threads.is_trusted()
        && fds::table_is_small()
        && threads::known_alone()
    {
        return (None, Some(1));
    }
    let status = ProcStatus::read();
    (status, status.map(|s| s.threads))
}

fn fork_daemon(
    config: &Daemon,
    hup: &signals::SavedHup,
    notify: bool,
    privileged: Hook<'_>,
) -> Result<Running, Error> {
    let (read_end, write_end) = fds::pipe().map_err(|errno| Error::os(Step::Pipe, None, errno))?;
    // The intermediate shares the launcher's memory where it can (see intermediate.rs); else it is a copy.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    // SAFETY: single-threaded, as for the `fork` below.
    match unsafe { intermediate::double_fork() } {
        Ok(Side::Launcher(leader)) => {
            drop(write_end);
            return launcher(&read_end, leader, config);
        }
        Ok(Side::Daemon(intermediate, ready_to_run)) => {
            drop(read_end);
            let reporter = Reporter::new(write_end);
            if let Err(errno) = ready_to_run {
                fail(reporter, &Error::os(Step::Fork, None, errno));
            }
            return Ok(daemon(
                reporter,
                config,
                hup,
                notify,
                privileged,
                intermediate,
            ));
        }
        Err(Failure::Setsid(leader, errno)) => {
            let _ = nix::sys::wait::waitpid(leader, None);
            return Err(Error::os(Step::Setsid, None, errno));
        }
        Err(Failure::Fork(leader, errno)) => {
            let _ = nix::sys::wait::waitpid(leader, None);
            return Err(Error::os(Step::Fork, None, errno));
        }
        Err(Failure::Clone(errno)) => return Err(Error::os(Step::Fork, None, errno)),
        Err(Failure::Unsupported) => {}
    }
    // SAFETY: the process is single-threaded (checked by `background`: /proc, else what the OS tells, see
    // threads.rs; where nothing can tell, only on the word of an `unsafe` caller, `Daemon::start_unchecked`
    // or `#[daemon]`'s root main), so the child is a full copy of the only thread and may allocate.
    match unsafe { fork() } {
        Err(errno) => Err(Error::os(Step::Fork, None, errno)),
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            launcher(&read_end, child, config)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            Ok(first_child(
                Reporter::new(write_end),
                config,
                hup,
                notify,
                privileged,
            ))
        }
    }
}

/// The launcher: waits for the daemon's report, then exits 0 or returns the daemon's error.
fn launcher(read_end: &OwnedFd, child: Pid, config: &Daemon) -> Result<Running, Error> {
    let error = match handshake::wait(read_end, config.ready_timeout) {
        Ok(Report::Ready) => std::process::exit(0),
        Ok(Report::Failed(error)) | Err(error) => error,
        Ok(Report::Closed) => Error::new(Step::NotReady, None, None),
        Ok(Report::TimedOut) => {
            let outcome = stop(read_end, child);
            Error::new(
                Step::Timeout,
                Some(format!("{:?}", config.ready_timeout)),
                None,
            )
            .with_detail(outcome)
        }
    };
    // The first child exits right after its fork; reap it.
    let _ = nix::sys::wait::waitpid(child, None);
    if error.step() != Step::AlreadyRunning {
        clean_up_after(config);
    }
    Err(error)
}

/// A daemon that failed may have left its pid and lock files: it was killed (the ready timeout), died of
/// a signal, or could no longer remove them once its privileges were dropped. The launcher, still who
/// started it, removes them once the lock is released (it goes with the daemon's last descriptor, right
/// after its report), waiting at most `STOP_GRACE`; a lock still held then (a child of the daemon's) keeps
/// them.
fn clean_up_after(config: &Daemon) {
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while !config.clean_up_pid_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a daemon that missed the ready timeout: SIGTERM to its process group (whose id is the first
/// child's pid, since that child called setsid), then SIGKILL if the pipe has not closed within
/// `STOP_GRACE`. Says what happened.
fn stop(read_end: &OwnedFd, first_child: Pid) -> &'static str {
    let group = Pid::from_raw(-first_child.as_raw());
    if kill(group, Signal::SIGTERM).is_err() {
        return "it had already exited";
    }
    match handshake::wait(read_end, STOP_GRACE) {
        Ok(Report::TimedOut) => {
            let _ = kill(group, Signal::SIGKILL);
            // SIGKILL cannot be refused: wait (briefly) for the pipe to close, so that the daemon is gone
            // when the launcher says so.
            let _ = handshake::wait(read_end, STOP_GRACE);
            "it ignored SIGTERM and was killed (SIGKILL)"
        }
        _ => "it was stopped (SIGTERM)",
    }
}

/// The first child: a new session, then the second fork; it exits at once so the daemon is orphaned.
fn first_child(
    reporter: Reporter,
    config: &Daemon,
    hup: &signals::SavedHup,
    notify: bool,
    privileged: Hook<'_>,
) -> Running {
    // The session's id is this process's pid: the daemon's parent until it exits.
    let intermediate = match setsid() {
        Ok(session) => session,
        Err(errno) => fail(reporter, &Error::os(Step::Setsid, None, errno)),
    };
    // SAFETY: still the only thread of this process (see `fork_daemon`).
    match unsafe { fork() } {
        Err(errno) => fail(reporter, &Error::os(Step::Fork, None, errno)),
        Ok(ForkResult::Parent { .. }) => exit_now(0),
        Ok(ForkResult::Child) => daemon(reporter, config, hup, notify, privileged, intermediate),
    }
}

/// The daemon: sets itself up, reports, and returns to run the body. `notify`: whether the launcher
/// opened a notify socket; `intermediate`: the pid of the process that forked it.
fn daemon(
    reporter: Reporter,
    config: &Daemon,
    hup: &signals::SavedHup,
    notify: bool,
    privileged: Hook<'_>,
    intermediate: Pid,
) -> Running {
    // Single-threaded: the launcher checked before forking.
    // The reopen handler goes in after SIGHUP's disposition is restored, which would undo it.
    let pid_file = match setup(config, true, privileged, Some(1))
        .and_then(|p| signals::restore_hup(hup).map(|()| p))
        .and_then(|p| reopen_logs_on(config).map(|()| p))
    {
        Ok(pid_file) => pid_file,
        Err(error) => fail(reporter, &error),
    };
    // Ready, and the body, only once the intermediate has exited: the daemon's parent is then init (or
    // the nearest subreaper), as the body may expect, and systemd accepts its `MAINPID=` (it refuses one
    // whose parent is alive and not systemd).
    wait_for_exit(intermediate);
    // A failure to notify systemd reaches the launcher, which prints it.
    if ready::setup_done(config.ready, Some(reporter), notify).is_err() {
        // Released (and removed where it still may be) before the exit: a failed start leaves nothing.
        drop(pid_file);
        exit_now(1);
    }
    watchdog::start(config.watchdog);
    Running {
        pid_file,
        foreground: false,
    }
}

/// Waits until `parent`, the intermediate process (which exits right after its fork), is gone, so that
/// this process has been reparented. Usually it is gone already: one `getppid`. Else, on Linux, a pidfd
/// says when it exits (the kernel reparents its children before that); elsewhere, or without pidfds
/// (Linux before 5.3), `getppid` is asked again after each short sleep. Bounded, so that an intermediate
/// held up by something else (a debugger) cannot hold the daemon for ever.
fn wait_for_exit(parent: Pid) {
    if nix::unistd::getppid() != parent {
        return;
    }
    let deadline = std::time::Instant::now() + PARENT_EXIT_WAIT;
    #[cfg(target_os = "linux")]
    match crate::pidfd::open(parent) {
        Ok(pidfd) => {
            let _ = crate::pidfd::wait_exit(&pidfd, PARENT_EXIT_WAIT);
            return;
        }
        // Exited and reaped already.
        Err(nix::errno::Errno::ESRCH) => return,
        Err(_) => {}
    }
    while nix::unistd::getppid() == parent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Foreground (systemd `Type=notify`, PID 1, or forced): no fork, and stdio kept but for the configured
/// log files; the rest as a daemon.
pub(crate) fn foreground(config: &Daemon, privileged: Hook<'_>) -> Result<Running, Error> {
    let mut keep = config.keep_fds.clone();
    // Socket activation: the fds systemd passed, if they are for this process (the variables go).
    keep.extend(listen::take_env());
    let status = ProcStatus::read();
    fds::close_inherited(&keep, config.scope, status.map(|s| s.fd_table))?;
    notify::open()?;
    watchdog::take_env();
    signals::reset(status.map(|s| s.ignored))?;
    let threads = status.map(|s| s.threads);
    // As PID 1 (a container's entry point) a minimal init stays PID 1 and the program becomes its child,
    // so that SIGTERM and SIGINT act on it as on any process; this needs a single thread to fork.
    #[cfg(target_os = "linux")]
    if std::process::id() == 1 && threads::check(threads, config.threads).is_ok() {
        // SAFETY: threads::check just established that this process runs one thread.
        unsafe { crate::init::become_init(config) }?;
    }
    let pid_file = setup(config, false, privileged, threads)?;
    reopen_logs_on(config)?;
    ready::setup_done(config.ready, None, notify::active())?;
    watchdog::start(config.watchdog);
    Ok(Running {
        pid_file,
        foreground: true,
    })
}

/// The steps after the forks, in order: environment, limits, stdio, umask, user and group lookup, pid
/// file (locked; written, then closed), log files remembered for reopening, the program's
/// privileged code, supplementary groups, chroot, the working directory entered with the daemon's
/// effective ids (so a directory it may not enter fails the start), the group and user switch with the
/// kept capabilities, then the hardening that must follow the switch. On error, the pid file and its lock
/// file are removed (dropping `PidFile`) before the error is reported; after the switch, where the
/// daemon's user may not remove them, the lock file is emptied instead. `threads` is the process's thread
/// count, when known.
fn setup(
    config: &Daemon,
    detached: bool,
    privileged: Hook<'_>,
    threads: Option<u64>,
) -> Result<Option<PidFile>, Error> {
    hardening::clean_env(&config.privileges.env, threads)?;
    hardening::limits(
        config.privileges.core_dumps,
        config.privileges.nofile,
        config.privileges.nice,
    )?;
    // Only a daemon that keeps capabilities runs the code that parses and keeps them.
    let keep_caps = if config.privileges.keep_caps.is_empty() {
        caps::CapSet::default()
    } else {
        caps::CapSet::parse(&config.privileges.keep_caps)?
    };
    // Looked up first, and the switch checked possible, before any file is created: an impossible switch
    // is said as such, not as the first file it would have failed on.
    let identity = config.identity()?;
    identity.check_possible(config.user.as_deref(), config.group.as_deref())?;
    // Dropped on a failed start: removes the log files this start created.
    let mut log_files = None;
    // Forked, stdio goes to /dev/null or the log files; in the foreground only a log file the program
    // asked for replaces the terminal's or the service manager's fd: a key applies in every mode.
    let (stdout, stderr) = (config.stdout.as_deref(), config.stderr.as_deref());
    if detached || stdout.is_some() || stderr.is_some() {
        if stdout.is_some() || stderr.is_some() {
            // Log files are created 0o640 exactly; the configured umask follows.
            umask(Mode::empty());
        }
        let opened = fds::redirect_stdio(stdout, stderr, config.open_log, detached)?;
        log_files = Some(logs::remember(opened, stdout, stderr)?);
    }
    umask(Mode::from_bits_truncate(config.umask as _));
    let pid_file = config.acquire_pid_file()?;
    if let Some(files) = &mut log_files {
        files.give_to(identity.owner())?;
    }
    if let Some(code) = privileged {
        code()?;
    }
    let per_thread = match (config.privileges.no_new_privs, keep_caps.is_empty()) {
        (true, false) => Some("no_new_privs and the bounding-set drop of keep_caps"),
        (true, true) => Some("no_new_privs"),
        (false, false) => Some("the bounding-set drop of keep_caps"),
        (false, true) => None,
    };
    if let Some(settings) = per_thread {
        threads::check_alone(ProcStatus::read().map(|s| s.threads), settings)?;
    }
    identity.set_groups()?;
    if let Some(root) = &config.chroot {
        privileges::chroot(root)?;
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
        caps::after_switch(keep_caps, config.privileges.ambient_caps)?;
        // With capabilities back in the effective set, root must still be out of reach.
        if let Some((uid, gid)) = switched {
            privileges::check_dropped(uid, gid)?;
        }
    }
    hardening::after_switch(config.privileges.core_dumps, config.privileges.no_new_privs)?;
    if let Some(files) = log_files {
        files.install();
    }
    Ok(pid_file)
}

/// Installs the `reopen_logs_on` handler, if asked.
fn reopen_logs_on(config: &Daemon) -> Result<(), Error> {
    config.reopen_logs_on.map_or(Ok(()), logs::reopen_on)
}

/// Reports `error` to the launcher and ends this process without running destructors or atexit handlers.
fn fail(reporter: Reporter, error: &Error) -> ! {
    reporter.fail(error);
    exit_now(1)
}

/// `_exit(2)`: no second flush of stdio buffers, no atexit handlers, no destructors in a forked child.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it has no preconditions.
    unsafe { libc::_exit(code) }
}
