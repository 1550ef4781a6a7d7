//! The report: tables on stdout and, when asked, BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::columns::Column;
use crate::machine::Machine;
use crate::stats::{Grid, Stats, Summary};
use crate::subjects::{CHECKED, FLOOR, NAIVE, OURS, SUBJECTS};

/// Picks one measure of a cell.
type Pick = fn(&Stats) -> Summary;

/// The two timed measures: (title, pick).
const MEASURES: [(&str, Pick); 2] = [
    ("ready: spawn -> the daemon's pid read from the FIFO", |s| {
        s.ready
    }),
    ("launcher exited: spawn -> the launcher's exit seen", |s| {
        s.exited
    }),
];

pub(crate) struct Report<'a> {
    pub(crate) columns: &'a [Column],
    pub(crate) stats: Grid<Stats>,
    /// Each subject's binary size in bytes.
    pub(crate) sizes: Vec<u64>,
}

/// How a run was made, for the markdown.
pub(crate) struct RunInfo<'a> {
    pub(crate) machine: &'a Machine,
    pub(crate) rounds: usize,
    pub(crate) warmup: usize,
    pub(crate) seed: u64,
    pub(crate) took: Duration,
    pub(crate) chart: Option<&'a str>,
}

impl Report<'_> {
    fn ratio(&self, pick: Pick, c: usize, s: usize, base: usize) -> f64 {
        pick(self.stats.get(c, s)).median / pick(self.stats.get(c, base)).median
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for (title, pick) in MEASURES {
            let _ = writeln!(
                out,
                "{title} (µs: median / p95 / median ÷ floor's / ÷ checked's)"
            );
            let _ = write!(out, "{:<10}", "");
            for column in self.columns {
                let _ = write!(out, " | {:<34}", column.label);
            }
            out.push('\n');
            for (s, subject) in SUBJECTS.iter().enumerate() {
                let _ = write!(out, "{:<10}", subject.name);
                for c in 0..self.columns.len() {
                    let Summary { median, p95 } = pick(self.stats.get(c, s));
                    let cell = format!(
                        "{median:>6.0} {p95:>6.0} {:>5.2}x {:>5.2}x",
                        self.ratio(pick, c, s, FLOOR),
                        self.ratio(pick, c, s, CHECKED)
                    );
                    let _ = write!(out, " | {cell:<34}");
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(&self.breakdown_text());
        out
    }

    fn breakdown_text(&self) -> String {
        let mut out = String::from(
            "CPU time of all the run's processes (µs) and their minor page faults, medians\n",
        );
        for (s, subject) in SUBJECTS.iter().enumerate() {
            let _ = write!(out, "{:<10}", subject.name);
            for c in 0..self.columns.len() {
                let stats = self.stats.get(c, s);
                let _ = write!(
                    out,
                    " | {:>6.0} µs {:>5.0} faults",
                    stats.cpu.median, stats.faults.median
                );
            }
            out.push('\n');
        }
        out
    }

    fn markdown_table(&self, pick: Pick) -> String {
        let mut out = String::from("| subject |");
        for column in self.columns {
            let _ = write!(
                out,
                " {} median | p95 | × floor | × checked |",
                column.label
            );
        }
        out.push_str("\n|---|");
        for _ in self.columns {
            out.push_str("---:|---:|---:|---:|");
        }
        out.push('\n');
        for (s, subject) in SUBJECTS.iter().enumerate() {
            let _ = write!(out, "| {} |", subject.name);
            for c in 0..self.columns.len() {
                let Summary { median, p95 } = pick(self.stats.get(c, s));
                let _ = write!(
                    out,
                    " {median:.0} | {p95:.0} | {:.2} | {:.2} |",
                    self.ratio(pick, c, s, FLOOR),
                    self.ratio(pick, c, s, CHECKED)
                );
            }
            out.push('\n');
        }
        out
    }

    /// Per subject: binary size, then per column the CPU time, page faults and the ready time above the
    /// floor's.
    fn breakdown_markdown(&self) -> String {
        let mut out = String::from("| subject | binary KiB |");
        for column in self.columns {
            let _ = write!(
                out,
                " {} CPU µs | faults | ready − floor µs |",
                column.label
            );
        }
        out.push_str("\n|---|---:|");
        for _ in self.columns {
            out.push_str("---:|---:|---:|");
        }
        out.push('\n');
        for (s, subject) in SUBJECTS.iter().enumerate() {
            let _ = write!(out, "| {} | {} |", subject.name, self.sizes[s] / 1024);
            for c in 0..self.columns.len() {
                let stats = self.stats.get(c, s);
                let over = stats.ready.median - self.stats.get(c, FLOOR).ready.median;
                let _ = write!(
                    out,
                    " {:.0} | {:.0} | {over:.0} |",
                    stats.cpu.median, stats.faults.median
                );
            }
            out.push('\n');
        }
        out
    }

    /// The targets for `ours`, as (target, met, detail). Shown, not asserted.
    pub(crate) fn targets(&self) -> Vec<(String, bool, String)> {
        let ready = |s: &Stats| s.ready;
        // The notify column is not a like-for-like race: only `ours` speaks systemd's protocol there.
        let compared: Vec<usize> = (0..self.columns.len())
            .filter(|c| !self.columns[*c].notify)
            .collect();
        let per_column = |f: &dyn Fn(usize) -> String| {
            compared
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{} at {}", f(i), self.columns[*c].label))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let versus_checked: Vec<f64> = compared
            .iter()
            .map(|c| self.ratio(ready, *c, OURS, CHECKED))
            .collect();
        let base = self.stats.get(0, OURS).ready.median;
        let growth: Vec<f64> = compared
            .iter()
            .map(|c| self.stats.get(*c, OURS).ready.median / base)
            .collect();
        let versus_naive: Vec<f64> = compared
            .iter()
            .map(|c| self.ratio(ready, *c, OURS, NAIVE))
            .collect();
        vec![
            (
                "`ours` ready at most 1.00x of `checked` (fork 0.11 `checked_daemon`) in every column"
                    .to_string(),
                versus_checked.iter().all(|r| *r <= 1.0),
                per_column(&|c| format!("{:.3}x", versus_checked[c])),
            ),
            (
                format!(
                    "`ours` flat from {} to the largest limit (median within 10%)",
                    self.columns[0].label
                ),
                growth.iter().all(|g| *g <= 1.10),
                per_column(&|c| format!("{:.2}x", growth[c])),
            ),
            (
                "`ours` never slower than the naive recipe".to_string(),
                versus_naive.iter().all(|r| *r <= 1.0),
                per_column(&|c| format!("{:.2}x", versus_naive[c])),
            ),
        ]
    }

    pub(crate) fn targets_text(&self) -> String {
        let mut out = String::from("targets (shown, not asserted):\n");
        for (target, met, detail) in self.targets() {
            let verdict = if met { "met" } else { "MISSED" };
            let _ = writeln!(out, "  [{verdict}] {target}: {detail}");
        }
        out
    }

    pub(crate) fn markdown(&self, run: &RunInfo) -> String {
        let runs = self.stats.get(0, FLOOR).runs;
        let mut md = String::from("# Benchmarks\n\n");
        md.push_str(
            "Generated by `cargo bench -p tests --bench startup -- --write` (tests/benches/startup); \
             without `--write` the bench only prints its tables. Numbers from another machine, or another \
             run on a noisy one, differ: compare ratios within one run, not microseconds across runs.\n\n",
        );
        if let Some(chart) = run.chart {
            let _ = writeln!(
                md,
                "![Time to ready against RLIMIT_NOFILE, one line per subject]({chart})\n"
            );
        }
        md.push_str("## Machine\n\n");
        for line in run.machine.lines() {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(
            md,
            "- {} measured rounds ({runs} runs per cell) after {} warm-up rounds (discarded); shuffle \
             seed {}; the whole bench took {:.1} s",
            run.rounds,
            run.warmup,
            run.seed,
            run.took.as_secs_f64()
        );
        md.push_str("\n## Subjects\n\n");
        for subject in &SUBJECTS {
            let _ = writeln!(md, "- `{}`: {}", subject.name, subject.what);
        }
        md.push_str(METHOD);
        for (title, pick) in MEASURES {
            let _ = writeln!(md, "## {}\n", capitalize(title));
            md.push_str(&self.markdown_table(pick));
            md.push('\n');
        }
        md.push_str(
            "## Where the time goes\n\n\
             Per subject: the size of its binary; per column, medians of the CPU time (user + system) of \
             every process of the run (the launcher, the intermediate child, the daemon: `RUSAGE_CHILDREN` \
             of the benchmark before and after the run), of their minor page faults, and of the ready time \
             above the floor's in the same column.\n\n",
        );
        md.push_str(&self.breakdown_markdown());
        md.push('\n');
        md.push_str(include_str!("analysis.md"));
        md.push_str("\n## Targets\n\nShown by the tables, not asserted by the bench.\n\n");
        for (target, met, detail) in self.targets() {
            let verdict = if met { "met" } else { "**missed**" };
            let _ = writeln!(md, "- {target}: {verdict} ({detail})");
        }
        md.push_str(RUNNING);
        md
    }
}

const METHOD: &str = "\n## Method\n\n\
Each subject is a binary in tests/src/bin (`bench_NAME`), spawned by the benchmark with the path of a FIFO; \
the process that ends up as the daemon (the floor: the process itself) opens the FIFO and writes its pid, \
then exits. *Ready* is the time from just before `spawn` to the moment that pid is read; *launcher exited* \
is the time from just before `spawn` to the moment the spawned process's exit is seen (a pidfd, polled \
together with the FIFO). Both include the benchmark's own fork and exec of the subject, which is the \
floor's whole cost.\n\n\
Columns set the subject's `RLIMIT_NOFILE` (soft = hard, with setrlimit between fork and exec; the \
benchmark keeps its own limits). The subject inherits fds 0-2 only, whatever the benchmark inherited (the \
others are marked close-on-exec between fork and exec). The last column also leaves one inherited fd open \
at the highest number the limit allows (dup2 of /dev/null between fork and exec), which makes the kernel's \
fd table that large in the subject.\n\n\
Every round runs each (column, subject) cell once, in an order shuffled anew each round, so noise spreads \
over all cells alike. After each run the benchmark (a child subreaper) waits for the reported daemon to \
exit and reaps every descendant before the next run. Medians and p95 (nearest rank) are in microseconds; \
*× floor* is the subject's median divided by the floor's median in the same column and run, *× checked* \
the same against `checked`.\n\n";

const RUNNING: &str = "\n## Running it\n\n\
```sh\n\
cargo bench -p tests --bench startup                 # print the tables\n\
cargo bench -p tests --bench startup -- --write      # also write BENCHMARKS.md and docs/startup.svg\n\
BENCH_ROUNDS=3000 BENCH_WARMUP=50 cargo bench -p tests --bench startup\n\
```\n\n\
- `BENCH_ROUNDS`: measured rounds (default 1000, or fewer, at least 50, if the warm-up shows they would \
take more than 120 s); `BENCH_WARMUP` (default 20): discarded warm-up rounds;\n\
- `BENCH_NOFILE`: the largest limit to use instead of the probed one (`fs.nr_open` when the hard limit \
may be raised, else the current hard limit);\n\
- `BENCH_WRITE=1`: the same as `--write`; `BENCH_OUTPUT`: where to write the markdown (default: \
BENCHMARKS.md at the workspace root; the chart goes to docs/startup.svg beside it);\n\
- `BENCH_SEED`: the seed of the per-round shuffle;\n\
- `BENCH_RAW`: a file to write every measured run to, as CSV.\n";

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
