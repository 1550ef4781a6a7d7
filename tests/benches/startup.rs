//! Startup cost of daemonizing: `cargo bench -p tests --bench startup`.
//!
//! Five subjects (the `bench_*` binaries in tests/src/bin), each started by this benchmark as a child
//! process that gets the path of a FIFO; the process that ends up as the daemon writes its pid there:
//!
//! - `floor`: starts and reports without daemonizing (the cost of merely running a program);
//! - `ours`: `#[daemon]` with the defaults;
//! - `ours_full`: the same with a pid file and stdout and stderr log files (in a temporary directory);
//! - `naive`: a naive port of the classic recipe (fork, setsid, fork, chdir `/`, umask 0, close(2) every
//!   fd from 0 to the hard `RLIMIT_NOFILE`, /dev/null on 0, 1 and 2);
//! - `glibc`: daemon(3) (`nix::unistd::daemon`): one fork, nothing closed; the cheapest incomplete baseline.
//!
//! Each run is timed from just before `spawn` to the moment the daemon's pid is read from the FIFO
//! ("ready"), and to the moment the launcher (the spawned process) has exited ("launcher exited"). Both
//! are watched with one poll(2) on the FIFO and a pidfd, so neither delays the other.
//!
//! Three columns, by the child's `RLIMIT_NOFILE` (set with setrlimit in `pre_exec`; this process keeps
//! its own limits): soft = hard = 1024; soft = hard = the largest hard limit this machine allows (the
//! `fs.nr_open` sysctl when this process may raise its hard limit, else its current hard limit); and that
//! largest limit with one inherited fd at its highest number (limit - 1, dup2'ed in `pre_exec`).
//!
//! Runs are interleaved: each round runs every (column, subject) pair once, in an order shuffled anew
//! every round. The first rounds are warm-up and discarded. Medians and p95 are reported, with each
//! subject's median as a ratio to the floor's median in the same column, on stdout and in BENCHMARKS.md
//! at the root of the workspace.
//!
//! Every daemon exits right after it reports. This process is a child subreaper, so every orphan of a
//! run is reparented to it; after each run it waits until the reported daemon is gone (pidfd) and reaps
//! every remaining descendant before the next run (killing any that linger past a deadline).
//!
//! Environment:
//! - `BENCH_ROUNDS`: measured rounds (default 1000, or fewer if the warm-up shows they would take more
//!   than 120 s; at least 50);
//! - `BENCH_WARMUP` (default 20): discarded warm-up rounds;
//! - `BENCH_NOFILE`: the "largest" limit to use instead of the probed one (for example to keep the naive
//!   recipe's close loop short on a machine with a hard limit of 1073741816);
//! - `BENCH_OUTPUT`: where to write the markdown (default: BENCHMARKS.md at the workspace root);
//! - `BENCH_SEED`: the seed of the per-round shuffle (default 1);
//! - `BENCH_RAW`: a file to write every measured run to, as CSV (round, column, subject, `ready_us`,
//!   `exited_us`), for a closer look at the distributions.
//!
//! Linux only (`pidfd_open(2)`, Linux 5.3, and `PR_SET_CHILD_SUBREAPER`).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::stat::Mode;

/// Measured rounds, unless `BENCH_ROUNDS` says otherwise or they would not fit in [`BUDGET`].
const DEFAULT_ROUNDS: usize = 1000;
/// The fewest rounds the time budget may leave.
const MIN_ROUNDS: usize = 50;
/// Roughly how long the measured rounds may take when `BENCH_ROUNDS` is not set.
const BUDGET: Duration = Duration::from_secs(120);
const DEFAULT_WARMUP: usize = 20;
/// How long one run may take before it counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after it reported, and descendants to be reaped.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

struct Subject {
    name: &'static str,
    binary: &'static str,
    /// Whether it takes the temporary directory as its second argument.
    wants_dir: bool,
    /// Whether it forks (the floor reports from the launcher itself).
    forks: bool,
    what: &'static str,
}

const SUBJECTS: [Subject; 5] = [
    Subject {
        name: "floor",
        binary: env!("CARGO_BIN_EXE_bench_floor"),
        wants_dir: false,
        forks: false,
        what: "starts and reports, no daemonizing",
    },
    Subject {
        name: "ours",
        binary: env!("CARGO_BIN_EXE_bench_ours"),
        wants_dir: false,
        forks: true,
        what: "`#[daemon]`, defaults",
    },
    Subject {
        name: "ours_full",
        binary: env!("CARGO_BIN_EXE_bench_ours_full"),
        wants_dir: true,
        forks: true,
        what: "`Daemon::new()` + `pid_file` + `stdout` + `stderr` files",
    },
    Subject {
        name: "naive",
        binary: env!("CARGO_BIN_EXE_bench_naive"),
        wants_dir: false,
        forks: true,
        what: "classic recipe: fork, setsid, fork, chdir /, umask 0, close() 0..hard, /dev/null on 0-2",
    },
    Subject {
        name: "glibc",
        binary: env!("CARGO_BIN_EXE_bench_glibc"),
        wants_dir: false,
        forks: true,
        what: "daemon(3): one fork, setsid, chdir /, /dev/null on 0-2, closes nothing",
    },
];

/// The child's `RLIMIT_NOFILE` (soft = hard) and, optionally, one inherited fd at a high number.
struct Column {
    label: String,
    nofile: u64,
    high_fd: Option<i32>,
}

/// One run's times, in microseconds.
#[derive(Clone, Copy)]
struct Sample {
    ready: f64,
    exited: f64,
}

struct Bench {
    dir: PathBuf,
    fifo_path: PathBuf,
    fifo: OwnedFd,
    /// Bytes read from the FIFO but not yet a whole line.
    pending: Vec<u8>,
}

fn main() {
    let started = Instant::now();
    let rounds = std::env::var_os("BENCH_ROUNDS").map(|_| env_number("BENCH_ROUNDS", 0).max(1));
    let warmup = env_number("BENCH_WARMUP", DEFAULT_WARMUP);
    let seed = env_number("BENCH_SEED", 1) as u64;

    for subject in &SUBJECTS {
        if !Path::new(subject.binary).is_file() {
            die(&format!(
                "{} is missing; build it with `cargo build --release -p tests --bins` (or run through \
                 `cargo bench -p tests --bench startup`, which builds it)",
                subject.binary
            ));
        }
    }
    if let Err(errno) = nix::sys::prctl::set_child_subreaper(true) {
        die(&format!("cannot become a child subreaper: {errno}"));
    }

    let (own_soft, own_hard) =
        getrlimit(Resource::RLIMIT_NOFILE).unwrap_or_else(|e| die(&format!("getrlimit: {e}")));
    let nr_open = read_trimmed("/proc/sys/fs/nr_open").and_then(|s| s.parse::<u64>().ok());
    let largest = largest_nofile(own_hard, nr_open);
    let low = largest.min(1024);
    let columns = [
        Column {
            label: format!("nofile {low}"),
            nofile: low,
            high_fd: None,
        },
        Column {
            label: format!("nofile {largest}"),
            nofile: largest,
            high_fd: None,
        },
        Column {
            label: format!("nofile {largest}, fd {} open", largest - 1),
            nofile: largest,
            high_fd: Some((largest - 1).min(i32::MAX as u64) as i32),
        },
    ];

    let bench = Bench::new();
    let machine = Machine::describe(own_soft, own_hard, nr_open, largest);
    println!("{}", machine.text());
    println!(
        "{} measured rounds + {warmup} warm-up; each round runs {} subjects x {} columns in a shuffled order",
        rounds.map_or(format!("up to {DEFAULT_ROUNDS}"), |r| r.to_string()),
        SUBJECTS.len(),
        columns.len()
    );

    // samples[column][subject]
    let mut samples: Vec<Vec<Vec<Sample>>> = columns
        .iter()
        .map(|_| {
            SUBJECTS
                .iter()
                .map(|_| Vec::with_capacity(rounds.unwrap_or(DEFAULT_ROUNDS)))
                .collect()
        })
        .collect();
    let mut order: Vec<(usize, usize)> = (0..columns.len())
        .flat_map(|c| (0..SUBJECTS.len()).map(move |s| (c, s)))
        .collect();
    let mut rng = XorShift(seed.max(1));
    let mut bench = bench;
    let raw_path = std::env::var_os("BENCH_RAW").map(PathBuf::from);
    let mut raw = String::from("round,column,subject,ready_us,exited_us\n");

    let warmup_started = Instant::now();
    for _ in 0..warmup {
        bench.round(&mut rng, &mut order, &columns);
    }
    let rounds = if let Some(rounds) = rounds {
        rounds
    } else {
        // Keep the whole bench near BUDGET whatever the machine (a naive close loop to a hard limit of
        // 1,048,576 takes a good part of a second per run).
        let per_round = warmup_started.elapsed().as_secs_f64() / warmup.max(1) as f64;
        let fit = (BUDGET.as_secs_f64() / per_round.max(1e-6)) as usize;
        let rounds = fit.clamp(MIN_ROUNDS, DEFAULT_ROUNDS);
        if rounds < DEFAULT_ROUNDS {
            println!(
                "{rounds} measured rounds instead of {DEFAULT_ROUNDS}, to stay within {BUDGET:?} \
                 ({:.0} ms per round); set BENCH_ROUNDS to choose",
                per_round * 1e3
            );
        }
        rounds
    };
    let progress_every = (rounds / 10).max(1);
    for round in 0..rounds {
        for (c, s, sample) in bench.round(&mut rng, &mut order, &columns) {
            samples[c][s].push(sample);
            let _ = writeln!(
                raw,
                "{round},\"{}\",{},{:.1},{:.1}",
                columns[c].label, SUBJECTS[s].name, sample.ready, sample.exited
            );
        }
        if (round + 1) % progress_every == 0 {
            eprintln!(
                "  round {}/{rounds} ({:.0} s)",
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    bench.cleanup();
    if let Some(path) = &raw_path {
        if let Err(e) = std::fs::write(path, &raw) {
            die(&format!("cannot write {}: {e}", path.display()));
        }
    }

    let report = Report::new(&columns, &samples);
    let took = started.elapsed();
    println!();
    println!("{}", report.text());
    println!("{}", report.targets_text());
    println!("bench took {:.1} s", took.as_secs_f64());

    let output = std::env::var_os("BENCH_OUTPUT").map_or_else(
        || {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("BENCHMARKS.md")
        },
        PathBuf::from,
    );
    let markdown = report.markdown(&machine, rounds, warmup, seed, took);
    match std::fs::write(&output, markdown) {
        Ok(()) => println!("wrote {}", output.display()),
        Err(e) => die(&format!("cannot write {}: {e}", output.display())),
    }
}

impl Bench {
    /// A private temporary directory holding the FIFO (and `ours_full`'s files), and the FIFO opened here
    /// for reading and writing, so that a subject's `open(O_WRONLY)` never blocks and reads never see EOF.
    fn new() -> Bench {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("daemon-bench-{}-{stamp:x}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            die(&format!("cannot create {}: {e}", dir.display()));
        }
        // Absolute: the daemons run in `/`.
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let fifo_path = dir.join("ready.fifo");
        if let Err(errno) = nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600)) {
            let _ = std::fs::remove_dir_all(&dir);
            die(&format!("mkfifo {}: {errno}", fifo_path.display()));
        }
        let fifo = nix::fcntl::open(
            &fifo_path,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|errno| {
            let _ = std::fs::remove_dir_all(&dir);
            die(&format!("open {}: {errno}", fifo_path.display()))
        });
        Bench {
            dir,
            fifo_path,
            fifo,
            pending: Vec::new(),
        }
    }

    /// One round: every (column, subject) pair once, in a newly shuffled order; exits on a failed run.
    fn round(
        &mut self,
        rng: &mut XorShift,
        order: &mut [(usize, usize)],
        columns: &[Column],
    ) -> Vec<(usize, usize, Sample)> {
        rng.shuffle(order);
        let mut samples = Vec::with_capacity(order.len());
        for &(c, s) in order.iter() {
            match self.run(&SUBJECTS[s], &columns[c]) {
                Ok(sample) => samples.push((c, s, sample)),
                Err(e) => {
                    self.cleanup();
                    die(&format!(
                        "{} at {} failed: {e}",
                        SUBJECTS[s].name, columns[c].label
                    ))
                }
            }
        }
        samples
    }

    /// Runs `subject` once under `column`'s limits; returns its times once every process it started is gone.
    fn run(&mut self, subject: &Subject, column: &Column) -> Result<Sample, String> {
        let mut command = Command::new(subject.binary);
        command.arg(&self.fifo_path);
        if subject.wants_dir {
            command.arg(&self.dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let nofile = column.nofile;
        let high_fd = column.high_fd;
        let setup = move || {
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile)?;
            if let Some(fd) = high_fd {
                // stdin (/dev/null by then) at the highest number the limit allows; dup2 leaves the
                // copy without close-on-exec, so the subject inherits it.
                // SAFETY: in the child before exec, where no Rust object owns `fd`.
                if unsafe { libc::dup2(0, fd) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the closure runs in the forked child before exec and only makes two async-signal-safe
        // system calls (setrlimit, dup2) on integers it captured by value: no allocation, no lock.
        unsafe {
            command.pre_exec(setup);
        }

        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", subject.binary))?;
        let launcher = child.id() as i32;
        let pidfd = pidfd_open(launcher).map_err(|e| format!("pidfd_open({launcher}): {e}"))?;
        let deadline = start + RUN_TIMEOUT;
        let mut ready: Option<(Duration, i32)> = None;
        let mut exited: Option<Duration> = None;
        let mut failure = None;
        while ready.is_none() || exited.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failure = Some(format!(
                    "no {} within {RUN_TIMEOUT:?}",
                    if ready.is_none() {
                        "report on the FIFO"
                    } else {
                        "launcher exit"
                    }
                ));
                break;
            }
            let mut fds = [
                PollFd::new(self.fifo.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            // Only what is still awaited: a reaped launcher's pidfd stays readable, and polling it again
            // would spin this process on a CPU the daemon needs.
            let watched = match (ready.is_none(), exited.is_none()) {
                (true, true) => &mut fds[..],
                (true, false) => &mut fds[..1],
                _ => &mut fds[1..],
            };
            let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            match poll(watched, PollTimeout::from(millis)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(errno) => return Err(format!("poll: {errno}")),
            }
            // One timestamp for whatever woke us, taken before handling either event.
            let now = start.elapsed();
            let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let fifo_ready = readable(&fds[0]);
            let launcher_gone = readable(&fds[1]);
            if fifo_ready && ready.is_none() {
                if let Some(pid) = self.read_pid()? {
                    ready = Some((now, pid));
                }
            }
            if launcher_gone && exited.is_none() {
                exited = Some(now);
                let status = child.wait().map_err(|e| format!("wait: {e}"))?;
                if !status.success() {
                    failure = Some(format!("the launcher exited with {status}"));
                }
                if ready.is_none() && failure.is_none() && !subject.forks {
                    // The floor reports before it exits: its report must already be there.
                    if let Some(pid) = self.read_pid()? {
                        ready = Some((now, pid));
                    }
                }
            }
            if failure.is_some() && ready.is_none() {
                break;
            }
        }

        // Whatever happened, leave nothing running: the launcher, the reported daemon, every orphan.
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let daemon = ready.map(|(_, pid)| pid);
        if let Some(pid) = daemon {
            if pid != launcher {
                wait_gone(pid)?;
            }
        }
        reap_descendants()?;

        if let Some(failure) = failure {
            return Err(failure);
        }
        let (Some((ready_at, daemon)), Some(exited_at)) = (ready, exited) else {
            return Err("incomplete run".into());
        };
        if subject.forks == (daemon == launcher) {
            return Err(format!(
                "reported pid {daemon}, launcher pid {launcher}: {}",
                if subject.forks {
                    "it did not daemonize"
                } else {
                    "the floor should report from the launcher"
                }
            ));
        }
        Ok(Sample {
            ready: ready_at.as_secs_f64() * 1e6,
            exited: exited_at.as_secs_f64() * 1e6,
        })
    }

    /// Reads what the FIFO holds; the pid on the first whole line, if there is one.
    fn read_pid(&mut self) -> Result<Option<i32>, String> {
        let mut chunk = [0u8; 256];
        loop {
            match nix::unistd::read(&self.fifo, &mut chunk) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(format!("read from the FIFO: {errno}")),
            }
        }
        let Some(end) = self.pending.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let line: Vec<u8> = self.pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..end]).into_owned();
        if !self.pending.is_empty() {
            return Err(format!(
                "unexpected extra report on the FIFO: {:?}",
                String::from_utf8_lossy(&self.pending)
            ));
        }
        text.parse()
            .map(Some)
            .map_err(|_| format!("bad report on the FIFO: {text:?}"))
    }

    fn cleanup(&self) {
        let _ = reap_descendants();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pidfd for `pid` (close-on-exec), readable once the process has exited.
fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open(2) takes a pid and a flags word and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the daemon `pid` (a descendant, so its pid cannot be reused before we reap it) has exited;
/// SIGKILLs it if it lingers.
fn wait_gone(pid: i32) -> Result<(), String> {
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(()),
        Err(errno) => return Err(format!("pidfd_open({pid}): {errno}")),
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(EXIT_TIMEOUT.as_millis()).unwrap_or(u16::MAX);
    loop {
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => break,
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(format!("poll: {errno}")),
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    Err(format!(
        "daemon {pid} was still running {EXIT_TIMEOUT:?} after it reported; killed"
    ))
}

/// Reaps every child (as a subreaper, every orphaned descendant becomes one) until none is left; kills
/// those still alive at the deadline.
fn reap_descendants() -> Result<(), String> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let mut killed = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes the status into a valid c_int of ours.
        let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
        if pid > 0 {
            continue;
        }
        if pid < 0 {
            return match Errno::last() {
                Errno::ECHILD if killed.is_empty() => Ok(()),
                Errno::ECHILD => Err(format!("killed lingering processes {killed:?}")),
                Errno::EINTR => continue,
                errno => Err(format!("waitpid: {errno}")),
            };
        }
        if Instant::now() >= deadline {
            for child in children() {
                if !killed.contains(&child) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    killed.push(child);
                }
            }
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The pids whose parent is this process, from /proc.
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect()
}

/// The largest `RLIMIT_NOFILE` a child can get: `BENCH_NOFILE`, else `fs.nr_open` if a child may raise its
/// hard limit that far (root with `CAP_SYS_RESOURCE`), else our hard limit. Probed by starting the floor
/// with the limit set in `pre_exec`: a refused setrlimit makes the spawn fail.
fn largest_nofile(own_hard: u64, nr_open: Option<u64>) -> u64 {
    let forced = std::env::var("BENCH_NOFILE").ok().map(|v| {
        v.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| die(&format!("BENCH_NOFILE={v:?} is not a number")))
    });
    let own = if own_hard == RLIM_INFINITY {
        nr_open.unwrap_or(1 << 20)
    } else {
        own_hard
    };
    let mut candidates: Vec<u64> = match forced {
        Some(n) => vec![n],
        None => nr_open
            .into_iter()
            .filter(|n| *n > own)
            .chain([own])
            .collect(),
    };
    candidates.retain(|n| *n >= 4);
    for limit in candidates {
        let mut command = Command::new(SUBJECTS[0].binary);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only setrlimit, an async-signal-safe system call, on a captured integer.
        unsafe {
            command.pre_exec(move || Ok(setrlimit(Resource::RLIMIT_NOFILE, limit, limit)?));
        }
        // Without arguments the floor exits at once with a usage message.
        if let Ok(mut child) = command.spawn() {
            let _ = child.wait();
            return limit;
        }
        if forced.is_some() {
            die(&format!(
                "a child cannot get RLIMIT_NOFILE {limit} (BENCH_NOFILE)"
            ));
        }
    }
    die("no RLIMIT_NOFILE could be set for a child")
}

struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    rustc: Option<String>,
    own_soft: u64,
    own_hard: u64,
    nr_open: Option<u64>,
    largest: u64,
    date: String,
}

impl Machine {
    fn describe(own_soft: u64, own_hard: u64, nr_open: Option<u64>, largest: u64) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let rustc =
            Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc")))
                .arg("-V")
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into()),
            rustc,
            own_soft,
            own_hard,
            nr_open,
            largest,
            date: today(),
        }
    }

    fn lines(&self) -> Vec<String> {
        let show = |n: u64| {
            if n == RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                n.to_string()
            }
        };
        let mut lines = vec![
            format!("date: {}", self.date),
            format!("cpu: {} ({} cores available)", self.cpu, self.cores),
            format!("kernel: Linux {}", self.kernel),
        ];
        if let Some(rustc) = &self.rustc {
            lines.push(format!("compiler: {rustc}"));
        }
        lines.push(format!(
            "RLIMIT_NOFILE of the benchmark: soft {}, hard {}; fs.nr_open {}",
            show(self.own_soft),
            show(self.own_hard),
            self.nr_open.map_or("?".into(), |n| n.to_string())
        ));
        lines.push(format!(
            "largest limit used for the subjects: {}{}",
            self.largest,
            if std::env::var_os("BENCH_NOFILE").is_some() {
                " (BENCH_NOFILE)"
            } else if Some(self.largest) == self.nr_open {
                " (fs.nr_open: the hard limit could be raised)"
            } else {
                " (the hard limit; raising it was not allowed)"
            }
        ));
        lines
    }

    fn text(&self) -> String {
        self.lines().join("\n")
    }
}

/// Medians, p95 and ratios, per column and subject.
struct Report<'a> {
    columns: &'a [Column],
    /// stats[column][subject]
    stats: Vec<Vec<Stats>>,
}

/// Picks (median, p95) of one measure.
type Pick = fn(&Stats) -> (f64, f64);

#[derive(Clone, Copy)]
struct Stats {
    ready_median: f64,
    ready_p95: f64,
    exited_median: f64,
    exited_p95: f64,
    runs: usize,
}

impl<'a> Report<'a> {
    fn new(columns: &'a [Column], samples: &[Vec<Vec<Sample>>]) -> Report<'a> {
        let stats = samples
            .iter()
            .map(|by_subject| {
                by_subject
                    .iter()
                    .map(|runs| {
                        let mut ready: Vec<f64> = runs.iter().map(|s| s.ready).collect();
                        let mut exited: Vec<f64> = runs.iter().map(|s| s.exited).collect();
                        ready.sort_by(f64::total_cmp);
                        exited.sort_by(f64::total_cmp);
                        Stats {
                            ready_median: percentile(&ready, 0.5),
                            ready_p95: percentile(&ready, 0.95),
                            exited_median: percentile(&exited, 0.5),
                            exited_p95: percentile(&exited, 0.95),
                            runs: runs.len(),
                        }
                    })
                    .collect()
            })
            .collect();
        Report { columns, stats }
    }

    fn floor(&self, column: usize) -> Stats {
        self.stats[column][0]
    }

    /// (title, median, p95) for the two measures.
    fn measures() -> [(&'static str, Pick); 2] {
        [
            ("ready: spawn -> the daemon's pid read from the FIFO", |s| {
                (s.ready_median, s.ready_p95)
            }),
            ("launcher exited: spawn -> the launcher's exit seen", |s| {
                (s.exited_median, s.exited_p95)
            }),
        ]
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (title, pick) in Report::measures() {
            let _ = writeln!(out, "{title} (µs: median / p95 / median ÷ floor's median)");
            let _ = write!(out, "{:<10}", "");
            for column in self.columns {
                let _ = write!(out, " | {:<28}", column.label);
            }
            out.push('\n');
            for (s, subject) in SUBJECTS.iter().enumerate() {
                let _ = write!(out, "{:<10}", subject.name);
                for c in 0..self.columns.len() {
                    let (median, p95) = pick(&self.stats[c][s]);
                    let (floor, _) = pick(&self.floor(c));
                    let cell = format!("{median:>7.0} {p95:>7.0}  {:>6.2}x", median / floor);
                    let _ = write!(out, " | {cell:<28}");
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }

    fn markdown_table(&self, pick: Pick) -> String {
        let mut out = String::from("| subject |");
        for column in self.columns {
            let _ = write!(out, " {} median | p95 | × floor |", column.label);
        }
        out.push_str("\n|---|");
        for _ in self.columns {
            out.push_str("---:|---:|---:|");
        }
        out.push('\n');
        for (s, subject) in SUBJECTS.iter().enumerate() {
            let _ = write!(out, "| {} |", subject.name);
            for c in 0..self.columns.len() {
                let (median, p95) = pick(&self.stats[c][s]);
                let (floor, _) = pick(&self.floor(c));
                let _ = write!(out, " {median:.0} | {p95:.0} | {:.2} |", median / floor);
            }
            out.push('\n');
        }
        out
    }

    /// The issue's targets for `ours`, as (target, verdict) lines. Shown, not asserted.
    fn targets(&self) -> Vec<(String, bool, String)> {
        const OURS: usize = 1;
        const NAIVE: usize = 3;
        let mut targets = Vec::new();
        let ratios: Vec<f64> = (0..self.columns.len())
            .map(|c| self.stats[c][OURS].ready_median / self.floor(c).ready_median)
            .collect();
        targets.push((
            "`ours` ready within 1.5x of the floor at every limit".to_string(),
            ratios.iter().all(|r| *r <= 1.5),
            ratios
                .iter()
                .zip(self.columns)
                .map(|(r, c)| format!("{r:.2}x at {}", c.label))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        let base = self.stats[0][OURS].ready_median;
        let growth: Vec<f64> = (1..self.columns.len())
            .map(|c| self.stats[c][OURS].ready_median / base)
            .collect();
        targets.push((
            format!(
                "`ours` flat from {} to the largest limit (median within 10%)",
                self.columns[0].label
            ),
            growth.iter().all(|g| *g <= 1.10),
            (1..self.columns.len())
                .map(|c| format!("{:.2}x of it at {}", growth[c - 1], self.columns[c].label))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        let versus: Vec<(f64, f64)> = (0..self.columns.len())
            .map(|c| {
                (
                    self.stats[c][OURS].ready_median,
                    self.stats[c][NAIVE].ready_median,
                )
            })
            .collect();
        targets.push((
            "`ours` never slower than the naive recipe".to_string(),
            versus.iter().all(|(o, n)| o <= n),
            versus
                .iter()
                .zip(self.columns)
                .map(|((o, n), c)| format!("{o:.0} vs {n:.0} µs at {}", c.label))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        targets
    }

    fn targets_text(&self) -> String {
        let mut out = String::from("targets (shown, not asserted):\n");
        for (target, met, detail) in self.targets() {
            let verdict = if met { "met" } else { "MISSED" };
            let _ = writeln!(out, "  [{verdict}] {target}: {detail}");
        }
        out
    }

    fn markdown(
        &self,
        machine: &Machine,
        rounds: usize,
        warmup: usize,
        seed: u64,
        took: Duration,
    ) -> String {
        let runs = self.stats[0][0].runs;
        let mut md = String::from("# Benchmarks\n\n");
        md.push_str(
            "Generated by `cargo bench -p tests --bench startup` (tests/benches/startup.rs); rerun it to \
             refresh this file. Numbers from another machine, or another run on a noisy one, differ: \
             compare ratios within one run, not microseconds across runs.\n\n",
        );
        md.push_str("## Machine\n\n");
        for line in machine.lines() {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(
            md,
            "- {rounds} measured rounds ({runs} runs per cell) after {warmup} warm-up rounds (discarded); \
             shuffle seed {seed}; the whole bench took {:.1} s",
            took.as_secs_f64()
        );
        md.push_str("\n## Subjects\n\n");
        for subject in &SUBJECTS {
            let _ = writeln!(md, "- `{}`: {}", subject.name, subject.what);
        }
        md.push_str(
            "\n## Method\n\n\
             Each subject is a binary in tests/src/bin (`bench_NAME`), spawned by the benchmark with the \
             path of a FIFO; the process that ends up as the daemon (the floor: the process itself) opens the \
             FIFO and writes its pid, then exits. *Ready* is the time from just before `spawn` to the moment \
             that pid is read; *launcher exited* is the time from just before `spawn` to the moment the \
             spawned process's exit is seen (a pidfd, polled together with the FIFO). Both include the \
             benchmark's own fork and exec of the subject, which is the floor's whole cost.\n\n\
             Columns set the subject's `RLIMIT_NOFILE` (soft = hard, with setrlimit between fork and exec; \
             the benchmark keeps its own limits). The last column also leaves one inherited fd open at the \
             highest number the limit allows (dup2 of /dev/null between fork and exec), which makes the \
             kernel's fd table that large in the subject.\n\n\
             Every round runs each (column, subject) pair once, in an order shuffled anew each round, so \
             noise spreads over all cells alike. After each run the benchmark (a child subreaper) waits for \
             the reported daemon to exit and reaps every descendant before the next run. Medians and p95 \
             (nearest rank) are in microseconds; *× floor* is the subject's median divided by the floor's \
             median in the same column and run.\n\n",
        );
        for (title, pick) in Report::measures() {
            let _ = writeln!(md, "## {}\n", capitalize(title));
            md.push_str(&self.markdown_table(pick));
            md.push('\n');
        }
        md.push_str("## Targets\n\nShown by the table, not asserted by the bench.\n\n");
        for (target, met, detail) in self.targets() {
            let verdict = if met { "met" } else { "**missed**" };
            let _ = writeln!(md, "- {target}: {verdict} ({detail})");
        }
        md.push_str(
            "\n## Running it\n\n\
             ```sh\n\
             cargo bench -p tests --bench startup\n\
             BENCH_ROUNDS=3000 BENCH_WARMUP=50 cargo bench -p tests --bench startup\n\
             ```\n\n\
             - `BENCH_ROUNDS`: measured rounds (default 1000, or fewer, at least 50, if the warm-up shows \
             they would take more than 120 s); `BENCH_WARMUP` (default 20): discarded warm-up rounds;\n\
             - `BENCH_NOFILE`: the largest limit to use instead of the probed one (`fs.nr_open` when the \
             hard limit may be raised, else the current hard limit);\n\
             - `BENCH_OUTPUT`: where to write this file (default: BENCHMARKS.md at the workspace root);\n\
             - `BENCH_SEED`: the seed of the per-round shuffle;\n\
             - `BENCH_RAW`: a file to write every measured run to, as CSV.\n",
        );
        md
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Deterministic shuffles for the run order (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| die(&format!("{name}={value:?} is not a number"))),
        Err(_) => default,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Today's date (UTC), as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn die(message: &str) -> ! {
    eprintln!("startup bench: {message}");
    std::process::exit(1)
}
