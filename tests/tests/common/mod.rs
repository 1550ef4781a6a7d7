//! What the integration tests share: launching fixtures, reading /proc, cleaning up.
#![allow(dead_code)]

pub(crate) mod control;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The path of a fixture binary of this package.
pub(crate) fn exe(name: &str) -> &'static str {
    match name {
        "fx_signals" => env!("CARGO_BIN_EXE_fx_signals"),
        "fx_signals_none" => env!("CARGO_BIN_EXE_fx_signals_none"),
        "fx_signals_tokio" => env!("CARGO_BIN_EXE_fx_signals_tokio"),
        "fx_default" => env!("CARGO_BIN_EXE_fx_default"),
        "fx_configured" => env!("CARGO_BIN_EXE_fx_configured"),
        "fx_missing_workdir" => env!("CARGO_BIN_EXE_fx_missing_workdir"),
        "fx_tokio_below" => env!("CARGO_BIN_EXE_fx_tokio_below"),
        "fx_tokio_above" => env!("CARGO_BIN_EXE_fx_tokio_above"),
        "fx_manual" => env!("CARGO_BIN_EXE_fx_manual"),
        "fx_builder" => env!("CARGO_BIN_EXE_fx_builder"),
        "fx_keep" => env!("CARGO_BIN_EXE_fx_keep"),
        "fx_nested" => env!("CARGO_BIN_EXE_fx_nested"),
        "fx_reserved_signals" => env!("CARGO_BIN_EXE_fx_reserved_signals"),
        "fx_control" => env!("CARGO_BIN_EXE_fx_control"),
        "fx_commands" => env!("CARGO_BIN_EXE_fx_commands"),
        "fx_shared_lock" => env!("CARGO_BIN_EXE_fx_shared_lock"),
        "fx_privlogs" => env!("CARGO_BIN_EXE_fx_privlogs"),
        "fx_privileged" => env!("CARGO_BIN_EXE_fx_privileged"),
        "fx_privileged_async" => env!("CARGO_BIN_EXE_fx_privileged_async"),
        "fx_systemd" => env!("CARGO_BIN_EXE_fx_systemd"),
        "fx_ctor_thread" => env!("CARGO_BIN_EXE_fx_ctor_thread"),
        "fx_forever" => env!("CARGO_BIN_EXE_fx_forever"),
        "fx_fd_keeper" => env!("CARGO_BIN_EXE_fx_fd_keeper"),
        "fx_lock_flood" => env!("CARGO_BIN_EXE_fx_lock_flood"),
        "fx_server" => env!("CARGO_BIN_EXE_fx_server"),
        "fx_sink" => env!("CARGO_BIN_EXE_fx_sink"),
        "fx_upgrade" => env!("CARGO_BIN_EXE_fx_upgrade"),
        "fx_unit_all" => env!("CARGO_BIN_EXE_fx_unit_all"),
        "fx_unit_user" => env!("CARGO_BIN_EXE_fx_unit_user"),
        "fx_unit_builder" => env!("CARGO_BIN_EXE_fx_unit_builder"),
        "bench_floor" => env!("CARGO_BIN_EXE_bench_floor"),
        other => panic!("no fixture {other}"),
    }
}

/// `nobody`'s uid (and `nogroup`'s gid) on Debian, the user tests switch to.
pub(crate) const NOBODY: u32 = 65534;

/// Whether the tests run as root, which the privilege, chroot and namespace tests need.
pub(crate) fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Reports that the calling test could not run here, and why. The test must return right after.
///
/// libtest has no run-time skip, so the line goes to the test's stdout; `.ci/run` passes `--show-output`
/// and counts every `skipped:` line as a skip, not a pass.
pub(crate) fn skip(reason: &str) {
    println!("skipped: {reason}");
}

/// A fresh directory under the system temp dir, removed (with what it holds) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("daemon-rt-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// A fresh directory for one test and the path of the fixture's report file in it. Keep the directory
/// alive (`let (dir, out) = ...`, or `_dir`) for as long as the test uses the report.
pub(crate) fn scratch(tag: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let out = dir.join("report");
    (dir, out)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon started by a test: killed (SIGKILL) and waited for when dropped.
pub(crate) struct LiveDaemon {
    pub pid: i32,
    /// The pid of the launcher that started it, when known.
    pub launcher: Option<i32>,
}

impl LiveDaemon {
    pub(crate) fn new(pid: i32) -> LiveDaemon {
        LiveDaemon {
            pid,
            launcher: None,
        }
    }

    pub(crate) fn proc(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }

    /// Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [3] session,
    /// [4] `tty_nr`.
    pub(crate) fn stat(&self) -> Vec<String> {
        stat_fields(self.pid)
    }

    /// The values of a /proc/PID/status line, e.g. `status("Uid")`.
    pub(crate) fn status(&self, key: &str) -> Vec<String> {
        let status = std::fs::read_to_string(self.proc("status")).expect("status");
        let prefix = format!("{key}:");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The open fds and what each points at.
    pub(crate) fn fds(&self) -> Vec<(i32, String)> {
        let mut fds: Vec<(i32, String)> = std::fs::read_dir(self.proc("fd"))
            .expect("fd dir")
            .filter_map(|e| {
                let e = e.ok()?;
                let fd = e.file_name().to_str()?.parse().ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some((fd, target.display().to_string()))
            })
            .collect();
        fds.sort();
        fds
    }

    pub(crate) fn alive(&self) -> bool {
        is_alive(self.pid)
    }
}

impl Drop for LiveDaemon {
    fn drop(&mut self) {
        kill_and_wait(self.pid);
    }
}

pub(crate) fn stat_fields(pid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(')').expect("comm").1;
    rest.split_whitespace().map(str::to_string).collect()
}

/// The kernel's lock table as one snapshot: `/proc/locks` in a single read. The kernel generates it
/// anew at each read(2), so a file read in several (as `read_to_string` does) can skip or repeat an
/// entry when a lock comes or goes between two reads.
pub(crate) fn proc_locks() -> String {
    use std::io::Read as _;
    let mut buffer = vec![0u8; 8 << 20];
    let mut file = std::fs::File::open("/proc/locks").expect("/proc/locks");
    let read = file.read(&mut buffer).expect("read /proc/locks");
    assert!(read < buffer.len(), "/proc/locks is larger than one read");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

/// Alive and not a zombie.
pub(crate) fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|r| r.1.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(_) => false,
    }
}

/// Waits up to `within` for `pid` to be gone (or a zombie); whether it is.
pub(crate) fn gone_within(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while is_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    !is_alive(pid)
}

pub(crate) fn kill_and_wait(pid: i32) {
    if pid <= 1 {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    gone_within(pid, Duration::from_secs(5));
}

/// Waits until `path` holds a complete report (a line ending in a newline) and returns it.
pub(crate) fn wait_for_report(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "no report in {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the file at `path` contains `wanted` and returns its text.
pub(crate) fn wait_for_report_containing(path: &Path, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains(wanted)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {wanted:?} in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The pid at the start of a report.
pub(crate) fn report_pid(report: &str) -> i32 {
    report
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid in report")
}

/// A fixture command that reports to `out`.
pub(crate) fn fixture(name: &str, out: &Path) -> Command {
    let mut command = Command::new(exe(name));
    command
        .env("FIXTURE_OUT", out)
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DAEMON_FOREGROUND")
        .stdin(Stdio::null());
    command
}

/// Runs a launcher to its end (with a deadline) and returns its output.
pub(crate) fn launch(command: Command) -> Output {
    launch_with_pid(command).0
}

/// Runs a launcher to its end (with a deadline) and returns its output and pid.
pub(crate) fn launch_with_pid(mut command: Command) -> (Output, i32) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn launcher");
    let pid = child.id() as i32;
    // Kills a launcher that hangs; stops watching as soon as it has been reaped (its pid may be reused).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = done.clone();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            if watching.load(Ordering::Acquire) {
                return;
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    // The launcher is our child: until we reap it below, its pid cannot be reused, so the kill above is safe.
    let output = child.wait_with_output().expect("launcher output");
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    (output, pid)
}

/// Launches a fixture that should succeed and returns its daemon.
pub(crate) fn start(command: Command, out: &Path) -> LiveDaemon {
    let (output, launcher) = launch_with_pid(command);
    if !output.status.success() {
        // A daemon may still have started (a broken launcher): stop it before failing the test.
        std::thread::sleep(Duration::from_millis(200));
        if let Some(pid) = std::fs::read_to_string(out)
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
        {
            kill_and_wait(pid);
        }
        panic!("launcher failed: {}", stderr_text(&output));
    }
    let mut daemon = LiveDaemon::new(report_pid(&wait_for_report(out)));
    daemon.launcher = Some(launcher);
    daemon
}

/// A child process of the test (a daemon in the foreground): killed and reaped when dropped.
pub(crate) struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Adds `pre_exec` code to a command: `f` runs in the child, between fork and exec.
///
/// # Safety
///
/// `f` runs in a forked copy of the multi-threaded test harness, where only async-signal-safe work is
/// sound (see `CommandExt::pre_exec`): it must not allocate, take a lock or use anything another thread
/// may have held at the fork. System calls on its own values (dup2, setsid, ioctl, sigprocmask, signal,
/// setrlimit) are fine.
pub(crate) unsafe fn before_exec(
    command: &mut Command,
    f: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) {
    // SAFETY: the caller guarantees that `f` is async-signal-safe (this function's contract).
    unsafe { command.pre_exec(f) };
}

pub(crate) fn check(result: libc::c_int) -> std::io::Result<()> {
    if result == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The fd of `file`, moved to 100 or above (close-on-exec, as before), so that a `dup2` onto a low number
/// in a child before exec never meets the source itself (which would leave close-on-exec set).
pub(crate) fn high_fd(file: std::fs::File) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd `file` owns; the new fd is owned by the caller.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    assert!(
        fd >= 100,
        "F_DUPFD_CLOEXEC: {}",
        std::io::Error::last_os_error()
    );
    fd
}

/// Whether strace(1) is installed (the tests that watch or steer system calls skip without it).
pub(crate) fn has_strace() -> bool {
    Command::new("strace").arg("-V").output().is_ok()
}

/// `launcher` run as the last arguments of `tool ARGS...`, with the launcher's environment (not its
/// `pre_exec` code, nor its stdio).
pub(crate) fn run_under<I, S>(tool: &str, args: I, launcher: &Command) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(tool);
    command
        .args(args)
        .arg(launcher.get_program())
        .args(launcher.get_args());
    for (key, value) in launcher.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// `launcher` run under `strace -o LOG ARGS`. Without `-f` among `args` only the launcher is traced, and
/// strace exits with it.
pub(crate) fn under_strace(launcher: &Command, log: &Path, args: &[&str]) -> Command {
    let mut strace_args = vec![std::ffi::OsStr::new("-o"), log.as_os_str()];
    strace_args.extend(args.iter().map(std::ffi::OsStr::new));
    run_under("strace", strace_args, launcher)
}
