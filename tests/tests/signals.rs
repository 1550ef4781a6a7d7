//! The signal API on live daemons: SIGHUP, SIGTERM, SIGINT and SIGUSR1 as events, no signal lost after a
//! manual `ready()`, coexistence with `tokio::signal` and `signal-hook`, and the PID 1 rule.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{LiveDaemon, TempDir, fixture, gone_within, launch_with_pid, stderr_text};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A daemon started from a fixture in its own directory (where its pid file and log are).
struct Started {
    dir: TempDir,
    daemon: LiveDaemon,
    name: &'static str,
}

impl Started {
    fn pid_file(&self) -> PathBuf {
        self.dir.join(&format!("{}.pid", self.name))
    }

    fn log(&self) -> PathBuf {
        self.dir.join(&format!("{}.log", self.name))
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.daemon.pid), signal).expect("kill");
    }

    /// Waits until the log has this line (without the pid prefix) and returns the whole log.
    fn wait_for_line(&self, line: &str) -> String {
        wait_for_line(&self.log(), self.daemon.pid, line)
    }

    /// Waits for the daemon to be gone; then it needs no killing.
    fn wait_gone(&mut self) {
        assert!(
            gone_within(self.daemon.pid, Duration::from_secs(10)),
            "daemon {} still running",
            self.daemon.pid
        );
        self.daemon.pid = 0;
    }
}

/// Launches `name` with its working directory in a fresh scratch directory; returns once it is ready.
fn start(name: &'static str) -> Started {
    start_with(name, &[])
}

fn start_with(name: &'static str, env: &[(&str, &str)]) -> Started {
    let dir = TempDir::new(name);
    let mut command = fixture(name, &dir.join("report"));
    command.envs(env.iter().copied());
    command.current_dir(dir.path());
    let (output, launcher) = launch_with_pid(command);
    let pid = read_pid(&dir.join(&format!("{name}.pid")));
    let mut daemon = LiveDaemon::new(pid.unwrap_or(0));
    daemon.launcher = Some(launcher);
    assert!(
        output.status.success(),
        "launcher failed: {}",
        stderr_text(&output)
    );
    assert!(pid.is_some(), "no pid file after a successful start");
    Started { dir, daemon, name }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim_end().parse().ok()
}

fn wait_for_line(log: &Path, pid: i32, line: &str) -> String {
    let wanted = format!("{pid} {line}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l == wanted) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line `{wanted}` in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sighup_is_a_reload_event_and_the_daemon_stays() {
    let mut started = start("fx_signals");
    let pid = started.daemon.pid;
    for count in 1..=3 {
        started.signal(Signal::SIGHUP);
        started.wait_for_line(&format!("reload {count}"));
        assert!(started.daemon.alive(), "SIGHUP ended the daemon");
        assert_eq!(
            std::fs::read_to_string(started.pid_file()).unwrap(),
            format!("{pid}\n"),
            "the pid file is intact"
        );
        // The acknowledgement reached the record `myapp reload` waits on (in the lock file).
        let lock = started.dir.join("fx_signals.pid.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let record = std::fs::read_to_string(&lock).unwrap_or_default();
            if record.contains("\nsubscribed\n")
                && record.contains(&format!("\nreload {count} ok\n"))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "reload {count} not acknowledged in the lock file:\n{record}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    started.signal(Signal::SIGUSR1);
    started.wait_for_line("User1");
    assert!(
        started.daemon.alive(),
        "SIGUSR1 (subscribed) ended the daemon"
    );
    started.signal(Signal::SIGTERM);
    started.wait_gone();
}

/// SIGHUPs that arrive while a reload runs are one more Reload after it: never lost, never one per signal,
/// and its acknowledgement is the record's latest.
#[test]
fn sighups_during_a_reload_are_one_more_reload_after_it() {
    let mut started = start_with("fx_signals", &[("FIXTURE_MODE", "slow-reload")]);
    started.signal(Signal::SIGHUP);
    started.wait_for_line("reload 1");
    // The reload takes 2 s: these land while it runs.
    started.signal(Signal::SIGHUP);
    started.signal(Signal::SIGHUP);
    started.wait_for_line("reloaded 1");
    started.wait_for_line("reloaded 2");
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(started.log()).unwrap();
    let pid = started.daemon.pid;
    assert!(
        !log.lines().any(|l| l == format!("{pid} reload 3")),
        "two SIGHUPs during one reload became two reloads:\n{log}"
    );
    let record = std::fs::read_to_string(started.dir.join("fx_signals.pid.lock")).unwrap();
    assert!(record.contains("\nreload 2 ok\n"), "{record}");
    started.signal(Signal::SIGTERM);
    started.wait_gone();
}

#[test]
fn sigterm_and_sigint_return_from_main_and_remove_the_pid_file() {
    for (signal, which) in [(Signal::SIGTERM, "Sigterm"), (Signal::SIGINT, "Sigint")] {
        let mut started = start("fx_signals");
        let pid = started.daemon.pid;
        started.signal(signal);
        started.wait_gone();
        let log = std::fs::read_to_string(started.log()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines,
            [
                format!("{pid} subscribed"),
                format!("{pid} terminate {which}"),
                format!("{pid} main returns"),
            ],
            "{signal}: the event, then main's last line"
        );
        assert!(
            !started.pid_file().exists(),
            "{signal}: the pid file is left behind"
        );
    }
}

/// The gap-free start: with `readiness = "manual"` and the subscription before `ready()`, a SIGTERM sent the
/// moment the launcher exits is always an event, never the default action (which would leave the pid file
/// and no `terminate` line).
#[test]
fn no_sigterm_is_lost_right_after_a_manual_ready() {
    const STARTS: usize = 200;
    let dir = TempDir::new("no-loss");
    let pid_file = dir.join("fx_signals.pid");
    let log = dir.join("fx_signals.log");
    let mut delays = Vec::with_capacity(STARTS);
    for round in 0..STARTS {
        std::fs::write(&log, "").unwrap();
        let mut launcher = fixture("fx_signals", &dir.join("report"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn launcher");
        let status = launcher.wait().expect("wait launcher");
        let exited = Instant::now();
        let pid = read_pid(&pid_file);
        if let Some(pid) = pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        delays.push(exited.elapsed());
        let pid = pid.unwrap_or_else(|| panic!("round {round}: no pid file ({status})"));
        let mut daemon = LiveDaemon::new(pid);
        assert!(status.success(), "round {round}: launcher {status}");
        assert!(
            gone_within(pid, Duration::from_secs(10)),
            "round {round}: daemon {pid} did not stop"
        );
        daemon.pid = 0;
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.lines()
                .any(|l| l == format!("{pid} terminate Sigterm"))
                && text.lines().last() == Some(&format!("{pid} main returns")),
            "round {round}: SIGTERM was not received as an event:\n{text}"
        );
        assert!(
            !pid_file.exists(),
            "round {round}: the pid file is left behind"
        );
    }
    delays.sort();
    println!(
        "{STARTS} starts: SIGTERM sent {:?} (median), {:?} (max) after the launcher's exit",
        delays[STARTS / 2],
        delays[STARTS - 1]
    );
}

#[test]
fn the_async_form_coexists_with_tokio_signal_and_signal_hook() {
    let mut started = start("fx_signals_tokio");
    let pid = started.daemon.pid;
    started.signal(Signal::SIGHUP);
    for line in ["ours reload", "tokio hangup", "signal-hook 1"] {
        started.wait_for_line(line);
    }
    assert!(started.daemon.alive());
    started.signal(Signal::SIGINT);
    started.wait_gone();
    let log = std::fs::read_to_string(started.log()).unwrap();
    for line in [
        "ours terminate Sigint",
        "tokio ctrl_c",
        "signal-hook 2",
        "main returns",
    ] {
        assert!(
            log.lines().any(|l| l == format!("{pid} {line}")),
            "no `{line}`:\n{log}"
        );
    }
    assert_eq!(
        log.lines().last(),
        Some(format!("{pid} main returns").as_str())
    );
    assert!(!started.pid_file().exists());
}

/// Where a fixture runs as PID 1 of a new pid namespace (`unshare --pid --fork`): the runtime's init is
/// PID 1, the program its child.
struct AsPid1 {
    unshare: common::ChildGuard,
    /// The init's pid, as the test sees it.
    init: i32,
}

impl AsPid1 {
    fn start(mut command: Command, out: &Path) -> AsPid1 {
        let child = command.spawn().expect("spawn unshare");
        let unshare = common::ChildGuard(child);
        let report = common::wait_for_report(out);
        assert!(
            report.starts_with('2'),
            "the program is not PID 2: {report}"
        );
        let init = children(unshare.0.id() as i32);
        assert_eq!(init.len(), 1, "unshare has one child, the init");
        AsPid1 {
            unshare,
            init: init[0],
        }
    }

    /// `kill -SIGNAL 1`, from inside the namespace.
    fn kill_pid_1(&self, signal: &str) {
        let status = Command::new(which("nsenter").unwrap())
            .args(["--target", &self.init.to_string(), "--pid", "--", "kill"])
            .arg(format!("-{signal}"))
            .arg("1")
            .status()
            .expect("nsenter");
        // When PID 1 exits at once, the kernel SIGKILLs what is left in its namespace, `kill` included,
        // possibly before `kill` itself exits: that death means the signal was delivered. The callers'
        // checks of what PID 1 did prove the rest.
        let torn_down =
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL);
        assert!(status.success() || torn_down, "kill -{signal} 1: {status}");
    }

    /// Waits (boundedly) for unshare, whose status is the init's.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.unshare.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "PID 1 did not exit");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Root, unshare(1) and nsenter(1) (util-linux): else the test says why it skips.
fn can_run_pid_namespaces() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        common::skip("needs root for a new pid namespace");
        return false;
    }
    if which("unshare").is_none() || which("nsenter").is_none() {
        common::skip("needs unshare(1) and nsenter(1) (util-linux)");
        return false;
    }
    true
}

fn under_unshare(name: &str, dir: &TempDir) -> Command {
    let mut command = Command::new(which("unshare").unwrap());
    command
        .args(["--pid", "--fork", "--kill-child", common::exe(name)])
        .current_dir(dir.path())
        .env("FIXTURE_OUT", dir.join("report"))
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DAEMON_FOREGROUND")
        .stdin(Stdio::null());
    command
}

#[test]
fn as_pid_1_a_program_that_handles_nothing_stops_on_sigterm_and_sigint() {
    if !can_run_pid_namespaces() {
        return;
    }
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let dir = TempDir::new("pid1-none");
        let mut pid1 = AsPid1::start(under_unshare("fx_signals_none", &dir), &dir.join("report"));
        let program = children(pid1.init);
        assert_eq!(program.len(), 1, "the init has one child, the program");
        assert_eq!(
            std::fs::read_link(format!("/proc/{}/exe", pid1.init)).unwrap(),
            std::fs::read_link(format!("/proc/{}/exe", program[0])).unwrap(),
            "PID 1 is the program's own binary (the runtime's init)"
        );
        let pid_file = dir.join("fx_signals_none.pid");
        assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), "2\n");
        let sent = Instant::now();
        pid1.kill_pid_1(signal);
        let status = pid1.wait();
        let took = sent.elapsed();
        println!("as PID 1, SIG{signal} ended a program that handles nothing in {took:?}");
        assert_eq!(status.code(), Some(code), "SIG{signal}: {status}");
        assert!(
            !pid_file.exists(),
            "SIG{signal}: the pid file is left behind"
        );
        assert!(
            !dir.join("fx_signals_none.pid.lock").exists(),
            "SIG{signal}: the lock file is left behind"
        );
    }
}

#[test]
fn as_pid_1_a_program_that_handles_sigterm_runs_its_shutdown_and_exits_0() {
    if !can_run_pid_namespaces() {
        return;
    }
    let dir = TempDir::new("pid1-handles");
    let mut command = under_unshare("fx_signals", &dir);
    let child = common::ChildGuard(
        command
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn unshare"),
    );
    // Its `stdout` file applies in the foreground too.
    let log = dir.join("fx_signals.log");
    common::wait_for_report_containing(&log, "2 subscribed\n");
    let init = children(child.0.id() as i32)[0];
    let mut pid1 = AsPid1 {
        unshare: child,
        init,
    };
    pid1.kill_pid_1("TERM");
    let status = pid1.wait();
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines, "2 subscribed\n2 terminate Sigterm\n2 main returns\n");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        !dir.join("fx_signals.pid").exists(),
        "the pid file is left behind"
    );
}

#[test]
fn as_pid_1_orphans_are_reaped_without_stealing_the_programs_own_waits() {
    if !can_run_pid_namespaces() {
        return;
    }
    let dir = TempDir::new("pid1-orphans");
    let mut command = under_unshare("fx_signals_none", &dir);
    command.env("FIXTURE_MODE", "orphan");
    let pid1 = AsPid1::start(command, &dir.join("report"));
    let report = std::fs::read_to_string(dir.join("report")).unwrap();
    assert!(
        report.starts_with("2 orphan="),
        "the program's own wait for its shell failed: {report}"
    );
    let both = children(pid1.init);
    assert_eq!(
        both.len(),
        2,
        "the orphaned sleep is the init's child: {both:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while children(pid1.init).len() > 1 {
        assert!(
            Instant::now() < deadline,
            "the orphan was not reaped: the init's children are {:?}",
            children(pid1.init)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = children(pid1.init);
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/exe", left[0])).unwrap(),
        Path::new(common::exe("fx_signals_none")),
        "the program is still there"
    );
    drop(pid1);
}
