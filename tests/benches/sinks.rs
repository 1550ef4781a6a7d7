//! Lines per second to the journal and to syslog: `cargo bench -p tests --bench sinks` (as root).
//!
//! Each round writes the same LINES lines (`round R line K of LINES: ...`, 80 bytes) to a sink, from one
//! of two subjects, in an order shuffled every round:
//!
//! - syslog, to the real rsyslogd on a `/dev/log` of a private mount namespace (the benchmark runs itself
//!   again under `unshare -m`): `ours` is `bench_sink syslog` (a daemon writing each line to stderr, a
//!   pipe, which the relay frames and sends); the baselines are util-linux's `logger -t bench_sink`
//!   reading the lines from a file (one datagram per line, as the relay sends them), and the same writer
//!   in the foreground piped into `logger` (the relay's job, done by `logger`);
//! - the journal, in a container booted with systemd (tests/tests/nspawn; the benchmark runs itself again
//!   inside it, with journald's rate limit off): `ours` is `bench_sink journal` (each line written to a
//!   stream connection); the baselines are `systemd-cat -t bench_sink cat FILE` (the same protocol, the
//!   lines written in large blocks) and the same writer in the foreground under `systemd-cat` (the same
//!   protocol and the same writes: what the daemon would get from systemd-cat or from a unit's
//!   `StandardError=journal`).
//!
//! Measured per round: the lines per second from the subject's start until the sink has the round's last
//! line (rsyslogd's file polled every millisecond; `journalctl -n 1` every 10 ms), and the CPU time per
//! line of the producing side: for `ours` the daemon's writing loop (its own CPU over the loop: the cost
//! a line adds to the daemon) and, apart, the relay's whole CPU time; for the baselines the whole
//! `logger` or `systemd-cat`+`cat` process. Medians over the rounds, and each subject's ratio to its
//! baseline, measured in the same run.
//!
//! Environment: `BENCH_LINES` (default 20000), `BENCH_ROUNDS` (default 7), `BENCH_SEED` (default 1).

#[path = "../tests/nspawn/mod.rs"]
#[allow(dead_code)] // the helpers the tests use
mod nspawn;

mod shared;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::{Rng, env_number};

const WRITER: &str = env!("CARGO_BIN_EXE_bench_sink");

/// rsyslogd's configuration for the syslog part: no rate limit, the lines to one file.
const RSYSLOG_CONF: &str = r#"
global(workDirectory="DIR")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
template(name="t" type="string" string="%msg%\n")
:programname, isequal, "bench_sink" action(type="omfile" file="DIR/out.log" template="t")
"#;

/// The mount namespace's set-up: /dev as a tmpfs with the devices a process needs bound back in.
const DEV_SETUP: &str = r#"
set -e
mkdir -p "$1/olddev"
mount --rbind /dev "$1/olddev"
mount -t tmpfs -o mode=0755 devs /dev
for d in null zero random urandom full; do touch /dev/$d; mount --bind "$1/olddev/$d" /dev/$d; done
umount -l "$1/olddev"
"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Ours,
    Baseline,
    /// The same writer, in the foreground, its stderr carried by `logger` or `systemd-cat`.
    Piped,
}

/// One round's measures.
#[derive(Default, Clone, Copy)]
struct Sample {
    lines_per_sec: f64,
    /// CPU per line of the writer: the daemon's loop, or the whole baseline process.
    writer_ns: f64,
    /// CPU per line of the relay (ours, to syslog).
    relay_ns: f64,
}

fn cpu_ns(usage: &libc::rusage) -> f64 {
    let ns = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Reaps every child that has exited (this process is a child subreaper: the daemons and relays come
/// back to it): their pids and CPU times.
fn reap() -> Vec<(i32, f64)> {
    let mut reaped = Vec::new();
    loop {
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut status = 0;
        // SAFETY: wait4 writes into live locals.
        let pid = unsafe { libc::wait4(-1, &raw mut status, libc::WNOHANG, &raw mut usage) };
        if pid <= 0 {
            return reaped;
        }
        reaped.push((pid, cpu_ns(&usage)));
    }
}

/// Waits for `pid` to be reaped (collecting it in `reaped`), at most `within`.
fn wait_reaped(pid: i32, reaped: &mut Vec<(i32, f64)>, within: Duration) -> Option<f64> {
    let deadline = Instant::now() + within;
    loop {
        reaped.extend(reap());
        if let Some((_, cpu)) = reaped.iter().find(|(p, _)| *p == pid) {
            return Some(*cpu);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn line(round: usize, k: usize, lines: usize) -> String {
    format!("round {round} line {k} of {lines}: the quick brown fox jumps over the lazy dog")
}

/// One subject's round, inside the namespace or the container: `delivered` says whether the sink has
/// the round's last line.
fn round(
    subject: Subject,
    sink: &str,
    round_no: usize,
    lines: usize,
    dir: &Path,
    delivered: &dyn Fn(&str) -> bool,
    poll: Duration,
) -> Sample {
    let last = line(round_no, lines, lines);
    let report = dir.join(format!("report-{round_no}"));
    let file = dir.join(format!("lines-{round_no}"));
    if subject == Subject::Baseline {
        let mut text = String::new();
        for k in 1..=lines {
            text.push_str(&line(round_no, k, lines));
            text.push('\n');
        }
        std::fs::write(&file, text).unwrap();
    }
    let start = Instant::now();
    let mut child = match (subject, sink) {
        (Subject::Ours, _) => Command::new(WRITER)
            .args([sink, &lines.to_string(), &round_no.to_string()])
            .arg(&report)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .spawn(),
        (Subject::Baseline, "syslog") => Command::new("logger")
            .args(["-t", "bench_sink", "-p", "daemon.err"])
            .stdin(std::fs::File::open(&file).unwrap())
            .spawn(),
        (Subject::Baseline, _) => Command::new("systemd-cat")
            .args(["-t", "bench_sink", "cat"])
            .arg(&file)
            .stdin(Stdio::null())
            .spawn(),
        (Subject::Piped, "syslog") => Command::new("sh")
            .args([
                "-c",
                "\"$0\" inherit \"$1\" \"$2\" \"$3\" 2>&1 >/dev/null | logger -t bench_sink -p daemon.err",
                WRITER,
                &lines.to_string(),
                &round_no.to_string(),
            ])
            .arg(&report)
            .stdin(Stdio::null())
            .spawn(),
        (Subject::Piped, _) => Command::new("systemd-cat")
            .args(["-t", "bench_sink", WRITER, "inherit", &lines.to_string(), &round_no.to_string()])
            .arg(&report)
            .stdin(Stdio::null())
            .spawn(),
    }
    .expect("spawn the subject");
    let child_pid = child.id() as i32;
    while !delivered(&last) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{subject:?} to {sink}: the last line never arrived"
        );
        std::thread::sleep(poll);
    }
    let elapsed = start.elapsed();
    let mut reaped = Vec::new();
    let whole = wait_reaped(child_pid, &mut reaped, Duration::from_secs(30)).unwrap_or(f64::NAN);
    let _ = child.try_wait();
    let mut sample = Sample {
        lines_per_sec: lines as f64 / elapsed.as_secs_f64(),
        writer_ns: whole / lines as f64,
        relay_ns: 0.0,
    };
    if subject == Subject::Piped {
        let text = std::fs::read_to_string(&report).expect("the writer's report");
        let fields: Vec<f64> = text
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        sample.writer_ns = fields[2] / lines as f64;
    }
    if subject == Subject::Ours {
        let text = std::fs::read_to_string(&report).expect("the writer's report");
        let fields: Vec<f64> = text
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        let daemon = fields[0] as i32;
        sample.writer_ns = fields[2] / lines as f64;
        // The daemon, then (to syslog) the relay, end and come back to this subreaper.
        wait_reaped(daemon, &mut reaped, Duration::from_secs(30));
        if sink == "syslog" {
            let deadline = Instant::now() + Duration::from_secs(10);
            while reaped.len() < 3 && Instant::now() < deadline {
                reaped.extend(reap());
                std::thread::sleep(Duration::from_millis(1));
            }
            let relay: f64 = reaped
                .iter()
                .filter(|(p, _)| *p != daemon && *p != child_pid)
                .map(|(_, cpu)| cpu)
                .sum();
            sample.relay_ns = relay / lines as f64;
        }
    }
    let _ = std::fs::remove_file(&file);
    sample
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the rounds of one sink and prints its rows (`sink subject lines/s writer_ns relay_ns`).
fn drive(sink: &str, dir: &Path, delivered: &dyn Fn(&str) -> bool, poll: Duration) {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let lines = env_number("BENCH_LINES", 20_000);
    let rounds = env_number("BENCH_ROUNDS", 7);
    let mut rng = Rng(env_number("BENCH_SEED", 1) as u64 | 1);
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    // A warm-up round of each, not counted.
    for subject in [Subject::Ours, Subject::Baseline, Subject::Piped] {
        round(subject, sink, 0, lines / 10, dir, delivered, poll);
    }
    for round_no in 1..=rounds {
        let mut order = [Subject::Ours, Subject::Baseline, Subject::Piped];
        rng.shuffle(&mut order);
        for subject in order {
            let sample = round(
                subject,
                sink,
                round_no * 3 + subject as usize,
                lines,
                dir,
                delivered,
                poll,
            );
            samples[subject as usize].push(sample);
        }
    }
    for (index, name) in ["ours", "baseline", "piped"].iter().enumerate() {
        let pick =
            |f: fn(&Sample) -> f64| median(&mut samples[index].iter().map(f).collect::<Vec<_>>());
        println!(
            "{sink} {name} {:.0} {:.0} {:.0}",
            pick(|s| s.lines_per_sec),
            pick(|s| s.writer_ns),
            pick(|s| s.relay_ns)
        );
    }
}

/// Inside the mount namespace: rsyslogd on the namespace's `/dev/log`, then the rounds.
fn syslog_driver(dir: &Path) {
    let status = Command::new("sh")
        .args(["-c", DEV_SETUP, "sh"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "the namespace's /dev");
    std::fs::write(
        dir.join("rsyslog.conf"),
        RSYSLOG_CONF.replace("DIR", &dir.display().to_string()),
    )
    .unwrap();
    let mut rsyslogd = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .spawn()
        .expect("rsyslogd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new("/dev/log").exists() {
        assert!(Instant::now() < deadline, "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = dir.join("out.log");
    // The file only grows: each poll reads what was added since the last one.
    let seen = std::cell::RefCell::new((0u64, String::new()));
    let delivered = |last: &str| {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&out) else {
            return false;
        };
        let mut state = seen.borrow_mut();
        let _ = file.seek(SeekFrom::Start(state.0));
        let mut added = String::new();
        let _ = file.read_to_string(&mut added);
        state.0 += added.len() as u64;
        let found = added.contains(last) || state.1.contains(last);
        // Keep a line's worth, for a last line cut between two reads.
        state.1 = added[added.len().saturating_sub(200)..].to_string();
        found
    };
    drive("syslog", dir, &delivered, Duration::from_millis(1));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(rsyslogd.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = rsyslogd.wait();
}

/// Inside the container: the rounds, with `journalctl` asked for the identifier's last entry.
fn journal_driver(dir: &Path) {
    let delivered = |last: &str| {
        Command::new("journalctl")
            .args([
                "--no-pager",
                "--identifier=bench_sink",
                "-n",
                "1",
                "--output=cat",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim_end() == last)
    };
    drive("journal", dir, &delivered, Duration::from_millis(10));
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("daemon-rt-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn print_table(rows: &[String]) {
    println!(
        "| sink | subject | lines/s (median) | / baseline | CPU per line: writer | CPU per line: carrier |"
    );
    println!("|---|---|---|---|---|---|");
    for sink in ["syslog", "journal"] {
        let row = |subject: &str| {
            rows.iter()
                .map(|r| r.split_whitespace().collect::<Vec<_>>())
                .find(|f| f.len() == 5 && f[0] == sink && f[1] == subject)
        };
        let (Some(ours), Some(base), Some(piped)) = (row("ours"), row("baseline"), row("piped"))
        else {
            continue;
        };
        let (carrier, block) = if sink == "syslog" {
            ("logger", "logger < FILE")
        } else {
            ("systemd-cat", "systemd-cat cat FILE")
        };
        let rate = |f: &[&str]| f[2].parse::<f64>().unwrap_or(f64::NAN);
        let relay = if sink == "syslog" {
            format!("{} ns (the relay)", ours[4])
        } else {
            "none".into()
        };
        println!(
            "| {sink} | ours (`\"{sink}\"`, forked) | {} | {:.2} | {} ns (the daemon's write) | {relay} |",
            ours[2],
            rate(&ours) / rate(&piped),
            ours[3]
        );
        println!(
            "| {sink} | the same writer piped into {carrier} | {} | 1.00 | {} ns (its write) | |",
            piped[2], piped[3]
        );
        println!(
            "| {sink} | {block} | {} | {:.2} | {} ns (the whole carrier) | |",
            base[2],
            rate(&base) / rate(&piped),
            base[3]
        );
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "--syslog-driver" => return syslog_driver(Path::new(&std::env::args().nth(2).unwrap())),
        "--journal-driver" => return journal_driver(Path::new(&std::env::args().nth(2).unwrap())),
        _ => {}
    }
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the sinks benchmark needs root (a mount namespace, a container)");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let mut rows = Vec::new();
    // syslog, in a private mount namespace.
    let dir = scratch("syslog");
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(&me)
        .arg("--syslog-driver")
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    match output {
        Ok(output) if output.status.success() => {
            rows.extend(
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
        other => println!("skipped: syslog part: {other:?}"),
    }
    // The journal, in a container.
    match nspawn::boot() {
        Ok(container) => {
            container.write(
                "/etc/systemd/journald.conf.d/bench.conf",
                "[Journal]\nRateLimitIntervalSec=0\nRateLimitBurst=0\nStorage=volatile\n",
            );
            container.ok("systemctl restart systemd-journald");
            let dir = "/run/bench";
            container.ok(&format!("mkdir -p {dir}"));
            let output = container
                .command(&me.display().to_string())
                .args(["--journal-driver", dir])
                .stderr(Stdio::inherit())
                .output()
                .expect("nsenter");
            if output.status.success() {
                rows.extend(
                    String::from_utf8_lossy(&output.stdout)
                        .lines()
                        .map(str::to_string),
                );
            } else {
                println!("skipped: journal part: {}", output.status);
            }
        }
        Err(why) => println!("skipped: journal part: {why}"),
    }
    let _ = std::io::stdout().flush();
    print_table(&rows);
}
