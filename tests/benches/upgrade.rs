//! Switching a serving daemon to a new process: `cargo bench -p tests --bench upgrade`.
//!
//! Three subjects, each the same echo server (it answers every line with `PID LINE`) on a fixed loopback
//! port, switched to a new process while a client makes short connections (connect, one line, the
//! answer, close) as fast as it can:
//!
//! - `upgrade`: `fx_upgrade upgrade` (this library: the new daemon takes the socket and the lock, the old
//!   one drains once the new one is ready);
//! - `restart`: `fx_upgrade restart` (this library's stop, then start: the socket is closed, then bound
//!   again);
//! - `shellflip`: `bench_shellflip SOCKET restart` (Cloudflare's shellflip 2, the Rust peer: the old process
//!   spawns the new one, which inherits the socket).
//!
//! Per switch: the time from starting the switching command until a new process answers and the old one
//! is gone; the connections that failed (refused, reset, wrong answer) meanwhile; and the client's worst gap
//! between two answers from 50 ms before the switch to 200 ms after it. Rounds alternate the subjects in a
//! shuffled order. Medians and p95 over the rounds, with each subject's median as a ratio to `restart`'s.
//!
//! Environment: `BENCH_ROUNDS` (default 30), `BENCH_SEED` (default 1). Linux only.

mod shared;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::{Rng, env_number, percentile};

const UPGRADE: &str = env!("CARGO_BIN_EXE_fx_upgrade");
const SHELLFLIP: &str = env!("CARGO_BIN_EXE_bench_shellflip");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Upgrade,
    Restart,
    Shellflip,
}

impl Subject {
    const ALL: [Subject; 3] = [Subject::Upgrade, Subject::Restart, Subject::Shellflip];

    fn name(self) -> &'static str {
        match self {
            Subject::Upgrade => "upgrade (ours)",
            Subject::Restart => "restart (ours: stop, then start)",
            Subject::Shellflip => "shellflip 2",
        }
    }
}

/// One running server of a subject: its scratch directory, port, and how to switch it.
struct Server {
    subject: Subject,
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn start(subject: Subject, dir: &Path) -> Server {
        std::fs::create_dir_all(dir).expect("scratch dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let report = dir.join("report");
        let status = match subject {
            Subject::Upgrade | Subject::Restart => Command::new(UPGRADE)
                .env("FX_PID_FILE", dir.join("app.pid"))
                .env("FX_ADDR", &addr)
                .env("FIXTURE_OUT", &report)
                .stdin(Stdio::null())
                .status()
                .expect("fx_upgrade"),
            Subject::Shellflip => {
                let child = Command::new("setsid")
                    .args(["-f", SHELLFLIP])
                    .arg(dir.join("restart.sock"))
                    .arg(&addr)
                    .arg(&report)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .expect("bench_shellflip");
                // It reports once it listens.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !report.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                child
            }
        };
        assert!(status.success(), "{} did not start", subject.name());
        Server {
            subject,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// Switches to a new process; returns when the switching command returned.
    fn switch(&self) -> bool {
        let output = match self.subject {
            Subject::Upgrade | Subject::Restart => Command::new(UPGRADE)
                .arg(if self.subject == Subject::Upgrade {
                    "upgrade"
                } else {
                    "restart"
                })
                .env("FX_PID_FILE", self.dir.join("app.pid"))
                .env("FX_ADDR", format!("127.0.0.1:{}", self.port))
                .env("FIXTURE_OUT", self.dir.join("report"))
                .stdin(Stdio::null())
                .output(),
            Subject::Shellflip => Command::new(SHELLFLIP)
                .arg(self.dir.join("restart.sock"))
                .arg("restart")
                .stdin(Stdio::null())
                .output(),
        };
        output.is_ok_and(|o| o.status.success())
    }

    fn stop(&self) {
        for pid in pids_of(self.port) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The pid that answers on `port`.
fn answerer(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"who\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().next()?.parse().ok()
}

/// Whether `pid` runs (a zombie, waiting for a slow init to reap it, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// The processes with a socket on `port`, from /proc/net/tcp and their fds.
fn pids_of(port: u16) -> Vec<i32> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1)?.ends_with(&wanted)).then(|| fields.get(9).map(|i| (*i).to_string()))?
        })
        .collect();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|link| {
                    let link = link.display().to_string();
                    inodes
                        .iter()
                        .any(|inode| link == format!("socket:[{inode}]"))
                })
                .then_some(pid)
        })
        .collect()
}

/// What the client saw: when each answer came, and the failures.
#[derive(Default)]
struct Seen {
    answers: Vec<Instant>,
    failures: Vec<(Instant, String)>,
}

/// The client: short connections as fast as it can until `stop`.
fn client(port: u16, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let line = format!("c{n}");
        let result = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(format!("{line}\n").as_bytes())?;
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer)?;
            Ok(answer)
        })();
        let now = Instant::now();
        let mut seen = seen.lock().expect("seen");
        match result {
            Ok(answer) if answer.trim_end().ends_with(&format!(" {line}")) => {
                seen.answers.push(now);
            }
            Ok(answer) => seen
                .failures
                .push((now, format!("wrong answer {answer:?}"))),
            Err(error) => seen.failures.push((now, error.to_string())),
        }
    }
}

struct Round {
    switch: Duration,
    failed: usize,
    worst_gap: Duration,
}

fn round(server: &Server) -> Result<Round, String> {
    let before = answerer(server.port).ok_or("the server does not answer before the switch")?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let thread = {
        let (stop, seen, port) = (Arc::clone(&stop), Arc::clone(&seen), server.port);
        std::thread::spawn(move || client(port, &stop, &seen))
    };
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    let switched = server.switch();
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!(
            "{}: command took {:?}",
            server.subject.name(),
            began.elapsed()
        );
    }
    if !switched {
        stop.store(true, Ordering::Relaxed);
        let _ = thread.join();
        return Err(format!("{} failed", server.subject.name()));
    }
    // Until a new process answers and the old one is gone.
    let deadline = began + Duration::from_secs(30);
    loop {
        let gone = !alive(before);
        let answered = answerer(server.port).is_some_and(|pid| pid != before);
        if gone && answered {
            break;
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
            return Err(format!("{}: no switch within 30 s", server.subject.name()));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let switch = began.elapsed();
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    let seen = seen.lock().expect("seen");
    let window = (
        began
            .checked_sub(Duration::from_millis(50))
            .unwrap_or(began),
        ended + Duration::from_millis(200),
    );
    let failed = seen
        .failures
        .iter()
        .filter(|(at, _)| *at >= window.0 && *at <= window.1)
        .count();
    let mut last = window.0;
    let mut worst_gap = Duration::ZERO;
    for at in seen
        .answers
        .iter()
        .filter(|at| **at >= window.0 && **at <= window.1)
    {
        worst_gap = worst_gap.max(at.saturating_duration_since(last));
        last = *at;
    }
    worst_gap = worst_gap.max(window.1.saturating_duration_since(last));
    Ok(Round {
        switch,
        failed,
        worst_gap,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env_number("BENCH_ROUNDS", 30);
    let mut rng = Rng(u64::try_from(env_number("BENCH_SEED", 1))
        .unwrap_or(1)
        .max(1));
    let base = std::env::temp_dir().join(format!("daemon-rt-upgrade-bench-{}", std::process::id()));
    let servers: Vec<Server> = Subject::ALL
        .iter()
        .map(|subject| Server::start(*subject, &base.join(format!("{subject:?}"))))
        .collect();
    let mut results: Vec<Vec<Round>> = Subject::ALL.iter().map(|_| Vec::new()).collect();
    let mut errors: Vec<String> = Vec::new();
    for _ in 0..rounds {
        let mut order: Vec<usize> = (0..servers.len()).collect();
        rng.shuffle(&mut order);
        for index in order {
            match round(&servers[index]) {
                Ok(result) => results[index].push(result),
                Err(error) => errors.push(error),
            }
        }
    }
    for server in &servers {
        server.stop();
    }
    let _ = std::fs::remove_dir_all(&base);
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "{rounds} rounds per subject, shuffled; {cpus} CPUs, Linux {}",
        kernel.trim()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>14} {:>14} {:>12} {:>10}",
        "subject",
        "switch p50",
        "switch p95",
        "worst gap p50",
        "worst gap max",
        "failed",
        "gap / restart"
    );
    let median_gap = |rounds: &[Round]| -> Duration {
        let mut gaps: Vec<Duration> = rounds.iter().map(|r| r.worst_gap).collect();
        gaps.sort();
        if gaps.is_empty() {
            Duration::ZERO
        } else {
            percentile(&gaps, 0.5)
        }
    };
    let restart_gap = median_gap(&results[1]);
    for (subject, rounds) in Subject::ALL.iter().zip(&results) {
        if rounds.is_empty() {
            println!("{:<34} no successful round", subject.name());
            continue;
        }
        let mut switches: Vec<Duration> = rounds.iter().map(|r| r.switch).collect();
        switches.sort();
        let gap = median_gap(rounds);
        let max_gap = rounds.iter().map(|r| r.worst_gap).max().unwrap_or_default();
        let failed: usize = rounds.iter().map(|r| r.failed).sum();
        println!(
            "{:<34} {:>12} {:>12} {:>14} {:>14} {:>12} {:>10.2}",
            subject.name(),
            ms(percentile(&switches, 0.5)),
            ms(percentile(&switches, 0.95)),
            ms(gap),
            ms(max_gap),
            format!("{failed} in {}", rounds.len()),
            gap.as_secs_f64() / restart_gap.as_secs_f64().max(f64::MIN_POSITIVE),
        );
    }
    for error in &errors {
        println!("error: {error}");
    }
}
