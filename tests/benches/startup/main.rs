//! Startup cost of daemonizing: `cargo bench -p tests --bench startup`.
//!
//! Six subjects (the `bench_*` binaries in tests/src/bin, listed in `subjects.rs`), each started by this
//! benchmark as a child process that gets the path of a FIFO; the process that ends up as the daemon
//! writes its pid there: the floor (no daemonizing), ours (`#[daemon]` defaults, and the builder with a
//! pid file and log files), `fork` 0.11's `checked_daemon`, the classic recipe's close loop, and daemon(3).
//!
//! Each run is timed from just before `spawn` to the moment the daemon's pid is read from the FIFO
//! ("ready"), and to the moment the launcher (the spawned process) has exited ("launcher exited"). Both
//! are watched with one poll(2) on the FIFO and a pidfd, so neither delays the other.
//!
//! Columns, by the child's `RLIMIT_NOFILE` (set with setrlimit in `pre_exec`; this process keeps its own
//! limits; the child inherits fds 0-2 only, whatever this process inherited): soft = hard = 1024, 4096,
//! ... up to the largest hard limit this machine allows (the
//! `fs.nr_open` sysctl when this process may raise its hard limit, else its current hard limit); and that
//! largest limit with one inherited fd at its highest number (limit - 1, dup2'ed in `pre_exec`).
//!
//! Runs are interleaved: each round runs every (column, subject) pair once, in an order shuffled anew
//! every round (one loop, `round`, for warm-up and measured rounds alike). The first rounds are warm-up
//! and discarded. Medians and p95 are reported, with each subject's median as a ratio to the floor's and
//! to `checked_daemon`'s in the same column, with the CPU time and page faults of each run, on stdout;
//! and with `--write` (or `BENCH_WRITE=1`) in BENCHMARKS.md and an SVG chart, docs/startup.svg.
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
//! - `BENCH_WRITE=1`: as `--write`; `BENCH_OUTPUT`: where to write the markdown (default: BENCHMARKS.md
//!   at the workspace root; the chart goes to `docs/startup.svg` beside it);
//! - `BENCH_SEED`: the seed of the per-round shuffle (default 1);
//! - `BENCH_RAW`: a file to write every measured run to, as CSV (round, column, subject, `ready_us`,
//!   `exited_us`, `cpu_us`, `faults`), for a closer look at the distributions.
//!
//! Linux only (`pidfd_open(2)`, Linux 5.3, and `PR_SET_CHILD_SUBREAPER`).

mod chart;
mod columns;
mod machine;
mod report;
mod runner;
mod stats;
mod subjects;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit};

use columns::Column;
use machine::Machine;
use report::{Report, RunInfo};
use runner::{Bench, Sample};
use stats::{Grid, Stats};
use subjects::SUBJECTS;

/// Measured rounds, unless `BENCH_ROUNDS` says otherwise or they would not fit in [`BUDGET`].
const DEFAULT_ROUNDS: usize = 1000;
/// The fewest rounds the time budget may leave.
const MIN_ROUNDS: usize = 50;
/// Roughly how long the measured rounds may take when `BENCH_ROUNDS` is not set.
const BUDGET: Duration = Duration::from_secs(120);
const DEFAULT_WARMUP: usize = 20;
/// Where the chart goes, relative to the markdown's directory.
const CHART: &str = "docs/startup.svg";

fn main() {
    let started = Instant::now();
    let write = std::env::args().any(|a| a == "--write")
        || std::env::var_os("BENCH_WRITE").is_some_and(|v| v != "0" && !v.is_empty());
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
    let nr_open = machine::read_trimmed("/proc/sys/fs/nr_open").and_then(|s| s.parse::<u64>().ok());
    let largest = columns::largest_nofile(own_hard, nr_open);
    let columns = columns::columns(largest);

    let machine = Machine::describe(own_soft, own_hard, nr_open, largest);
    println!("{}", machine.text());
    println!(
        "{} measured rounds + {warmup} warm-up; each round runs {} subjects x {} columns in a shuffled order",
        rounds.map_or(format!("up to {DEFAULT_ROUNDS}"), |r| r.to_string()),
        SUBJECTS.len(),
        columns.len()
    );

    let mut bench = Bench::new();
    let mut order: Vec<(usize, usize)> = stats::cells(columns.len()).collect();
    let mut rng = XorShift(seed.max(1));
    let warmup_started = Instant::now();
    for _ in 0..warmup {
        round(&mut bench, &mut rng, &mut order, &columns);
    }
    let rounds = rounds.unwrap_or_else(|| fit_rounds(warmup_started.elapsed(), warmup));
    let mut samples: Grid<Vec<Sample>> =
        Grid::new(columns.len(), |_, _| Vec::with_capacity(rounds));
    let mut raw = String::from("round,column,subject,ready_us,exited_us,cpu_us,faults\n");
    let progress_every = (rounds / 10).max(1);
    for r in 0..rounds {
        for (c, s, sample) in round(&mut bench, &mut rng, &mut order, &columns) {
            samples.get_mut(c, s).push(sample);
            let _ = writeln!(
                raw,
                "{r},\"{}\",{},{:.1},{:.1},{:.0},{:.0}",
                columns[c].label,
                SUBJECTS[s].name,
                sample.ready,
                sample.exited,
                sample.cpu,
                sample.faults
            );
        }
        if (r + 1) % progress_every == 0 {
            eprintln!(
                "  round {}/{rounds} ({:.0} s)",
                r + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    bench.cleanup();
    if let Some(path) = std::env::var_os("BENCH_RAW").map(PathBuf::from)
        && let Err(e) = std::fs::write(&path, &raw)
    {
        die(&format!("cannot write {}: {e}", path.display()));
    }

    let report = Report {
        columns: &columns,
        stats: samples.map(|runs| Stats::of(runs)),
        sizes: SUBJECTS
            .iter()
            .map(|s| std::fs::metadata(s.binary).map_or(0, |m| m.len()))
            .collect(),
    };
    let took = started.elapsed();
    println!();
    println!("{}", report.text());
    println!("{}", report.targets_text());
    println!("bench took {:.1} s", took.as_secs_f64());
    if !write {
        println!(
            "(tables only: pass `-- --write` or set BENCH_WRITE=1 to write BENCHMARKS.md and {CHART})"
        );
        return;
    }
    let output = std::env::var_os("BENCH_OUTPUT").map_or_else(
        || {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("BENCHMARKS.md")
        },
        PathBuf::from,
    );
    let chart_path = output.parent().unwrap_or(Path::new(".")).join(CHART);
    let svg = chart::svg(&columns, &report.stats).unwrap_or_else(|e| die(&format!("chart: {e}")));
    if let Some(dir) = chart_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    write_file(&chart_path, &svg);
    let markdown = report.markdown(&RunInfo {
        machine: &machine,
        rounds,
        warmup,
        seed,
        took,
        chart: Some(CHART),
    });
    write_file(&output, &markdown);
}

/// One round, warm-up or measured: every (column, subject) cell once, in a newly shuffled order. Exits on
/// a failed run.
fn round(
    bench: &mut Bench,
    rng: &mut XorShift,
    order: &mut [(usize, usize)],
    columns: &[Column],
) -> Vec<(usize, usize, Sample)> {
    rng.shuffle(order);
    let mut samples = Vec::with_capacity(order.len());
    for &(c, s) in order.iter() {
        match bench.run(&SUBJECTS[s], &columns[c]) {
            Ok(sample) => samples.push((c, s, sample)),
            Err(e) => {
                bench.cleanup();
                die(&format!(
                    "{} at {} failed: {e}",
                    SUBJECTS[s].name, columns[c].label
                ))
            }
        }
    }
    samples
}

/// How many rounds fit in [`BUDGET`], judging by the warm-up (a naive close loop to a hard limit of
/// 1,048,576 takes a good part of a second per run).
fn fit_rounds(warmup_took: Duration, warmup: usize) -> usize {
    let per_round = warmup_took.as_secs_f64() / warmup.max(1) as f64;
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
}

fn write_file(path: &Path, text: &str) {
    match std::fs::write(path, text) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => die(&format!("cannot write {}: {e}", path.display())),
    }
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

fn die(message: &str) -> ! {
    eprintln!("startup bench: {message}");
    std::process::exit(1)
}
