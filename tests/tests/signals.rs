//! The signal API on live daemons: SIGHUP, SIGTERM, SIGINT and SIGUSR1 as events, no signal lost after a
//! manual `ready()`, coexistence with `tokio::signal` and `signal-hook`, and the PID 1 rule.
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fixture, gone_within, launch_with_pid, stderr_text, LiveDaemon, TempDir};
use nix::sys::signal::{kill, Signal};
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
    let dir = TempDir::new(name);
    let mut command = fixture(name, &dir.join("report"));
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

/// The gap-free start: with `ready = "manual"` and the subscription before `ready()`, a SIGTERM sent the
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
