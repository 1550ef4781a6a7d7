//! Stop latency: `cargo bench -p tests --bench control`.
//!
//! How long after a daemon exits does `stop` return? Each round starts one daemon (`fx_control start`,
//! which handles SIGTERM by returning from `main` and writes `CLOCK_MONOTONIC` to a stamp file as its very
//! last step) and stops it with one of three subjects, in an order shuffled anew every round:
//!
//! - `ours (library)`: `Daemon::stop()` called in this process (what a program's own CLI does);
//! - `ours (command)`: `fx_control stop`, a process, timed until this benchmark has reaped it;
//! - `start-stop-daemon`: `start-stop-daemon --stop --pidfile P --retry TERM/30/KILL/5`, the same way.
//!
//! The latency is the time from the daemon's stamp to the moment `stop` returned (the call returned, or
//! the stopping process exited), on the same clock. This process is a child subreaper and reaps each
//! daemon the moment it exits, as a prompt init does (start-stop-daemon waits for the pid to vanish, and a
//! zombie has not; our `stop` watches the exit itself, through a pidfd, and needs no reaping). The first rounds are warm-up and discarded;
//! medians and p95 are reported with each subject's median as a ratio to start-stop-daemon's.
//!
//! Environment: `BENCH_ROUNDS` (default 300), `BENCH_WARMUP` (default 10), `BENCH_SEED` (default 1).
//! Linux only; start-stop-daemon (Debian's dpkg) must be installed, else its column says so.

mod shared;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::{Rng, env_number, percentile};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fx_control");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Library,
    Command,
    StartStopDaemon,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Library => "ours (library)",
            Subject::Command => "ours (command)",
            Subject::StartStopDaemon => "start-stop-daemon --retry",
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock the daemon stamps its exit with.
fn now_ns() -> i128 {
    let mut now = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes into a live timespec.
    let result = unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &raw mut now) };
    assert_eq!(result, 0, "clock_gettime");
    i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec)
}

struct Scratch {
    dir: PathBuf,
    pid_file: PathBuf,
    stamp: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("daemon-rt-bench-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch {
            pid_file: dir.join("bench.pid"),
            stamp: dir.join("stamp"),
            dir,
        }
    }

    fn fixture(&self, action: &str) -> Command {
        let mut command = Command::new(FIXTURE);
        command
            .arg(action)
            .env("FX_PID_FILE", &self.pid_file)
            .env("FX_STAMP", &self.stamp)
            .env("FIXTURE_OUT", self.dir.join("report"))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("DAEMON_FOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `pidfd_open(2)`.
fn pidfd(pid: i32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is involved.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this fd, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).expect("fd")) }
}

/// Reaps every exited child (this process is a subreaper: the daemons are reparented to it).
fn reap_all() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// One round: start a daemon, stop it with `subject`, return the latency (or why there is none).
///
/// While a stopping process runs, the daemon is reaped the moment it exits (poll on its pidfd), as a
/// prompt init would: start-stop-daemon watches for the pid to disappear, which a zombie does not.
fn round(scratch: &Scratch, subject: Subject) -> Result<Duration, String> {
    let _ = std::fs::remove_file(&scratch.stamp);
    let _ = std::fs::remove_file(scratch.dir.join("report"));
    let started = scratch
        .fixture("start")
        .status()
        .map_err(|e| e.to_string())?;
    if !started.success() {
        return Err(format!("the daemon did not start: {started}"));
    }
    let report = std::fs::read_to_string(scratch.dir.join("report")).map_err(|e| e.to_string())?;
    let daemon: i32 = report
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("no pid in the report")?;
    let daemon_fd = pidfd(daemon);
    let returned = match subject {
        Subject::Library => {
            let outcome = daemon_runtime::Daemon::new()
                .pid_file(&scratch.pid_file)
                .stop();
            let at = now_ns();
            if !outcome.success() {
                return Err(outcome.to_string());
            }
            at
        }
        Subject::Command | Subject::StartStopDaemon => {
            let mut command = if subject == Subject::Command {
                scratch.fixture("stop")
            } else {
                let mut command = Command::new("start-stop-daemon");
                command
                    .args([
                        "--stop",
                        "--quiet",
                        "--retry",
                        "TERM/30/KILL/5",
                        "--pidfile",
                    ])
                    .arg(&scratch.pid_file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                command
            };
            let mut child = command.spawn().map_err(|e| e.to_string())?;
            let child_fd = pidfd(i32::try_from(child.id()).expect("pid"));
            let mut daemon_reaped = false;
            loop {
                let mut fds = [
                    PollFd::new(child_fd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(daemon_fd.as_fd(), PollFlags::POLLIN),
                ];
                let _ = poll(&mut fds, PollTimeout::from(10_000u16));
                if !daemon_reaped && fds[1].any() == Some(true) {
                    let _ = waitpid(Pid::from_raw(daemon), None);
                    daemon_reaped = true;
                }
                if fds[0].any() == Some(true) {
                    break;
                }
            }
            let at = now_ns();
            let status = child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("{} failed: {status}", subject.name()));
            }
            at
        }
    };
    reap_all();
    let stamp = std::fs::read_to_string(&scratch.stamp)
        .map_err(|e| format!("no exit stamp ({e}): the daemon did not exit through main"))?;
    let exited: i128 = stamp.trim().parse().map_err(|_| "bad stamp".to_string())?;
    let ns = u64::try_from(returned - exited)
        .map_err(|_| "stop returned before the exit".to_string())?;
    Ok(Duration::from_nanos(ns))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass test filters: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // The daemons are reparented to this process, which reaps them at once (see `round`).
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integers only.
    let subreaper = unsafe { nix::libc::prctl(nix::libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0, "PR_SET_CHILD_SUBREAPER");
    let rounds = env_number("BENCH_ROUNDS", 300);
    let warmup = env_number("BENCH_WARMUP", 10);
    let mut rng = Rng(env_number("BENCH_SEED", 1) as u64 | 1);
    let have_ssd = Command::new("start-stop-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut subjects = vec![Subject::Library, Subject::Command];
    if have_ssd {
        subjects.push(Subject::StartStopDaemon);
    } else {
        println!("start-stop-daemon: not installed (apt-get install dpkg); its column is skipped");
    }
    let scratch = Scratch::new();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); subjects.len()];
    let begun = Instant::now();
    for n in 0..warmup + rounds {
        let mut order: Vec<usize> = (0..subjects.len()).collect();
        rng.shuffle(&mut order);
        for i in order {
            match round(&scratch, subjects[i]) {
                Ok(latency) if n >= warmup => samples[i].push(latency),
                Ok(_) => {}
                Err(why) => {
                    eprintln!("round {n}, {}: {why}", subjects[i].name());
                    // exit() runs no destructor: remove the scratch directory first. (A daemon left
                    // running by a failed stop ends within 120 s: the fixture sets an alarm.)
                    drop(scratch);
                    std::process::exit(1);
                }
            }
        }
    }
    println!(
        "stop latency (daemon exit -> stop returned), {rounds} rounds after {warmup} warm-up, {:.1} s",
        begun.elapsed().as_secs_f64()
    );
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| {
            s.sort_unstable();
            percentile(s, 0.5)
        })
        .collect();
    let baseline = subjects
        .iter()
        .position(|s| *s == Subject::StartStopDaemon)
        .map(|i| medians[i]);
    println!("| subject | median | p95 | median / start-stop-daemon's |");
    println!("|---|---|---|---|");
    for (i, subject) in subjects.iter().enumerate() {
        let ratio = baseline.map_or("-".to_string(), |b| {
            format!("{:.4}", medians[i].as_secs_f64() / b.as_secs_f64())
        });
        println!(
            "| {} | {:.3} ms | {:.3} ms | {ratio} |",
            subject.name(),
            medians[i].as_secs_f64() * 1e3,
            percentile(&samples[i], 0.95).as_secs_f64() * 1e3,
        );
    }
}
