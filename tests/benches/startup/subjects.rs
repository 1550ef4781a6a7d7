//! The programs the benchmark starts: the `bench_*` binaries in tests/src/bin.

/// One benchmark subject.
pub(crate) struct Subject {
    pub(crate) name: &'static str,
    pub(crate) binary: &'static str,
    /// Whether it takes the temporary directory as its second argument.
    pub(crate) wants_dir: bool,
    /// Whether it forks (the floor reports from the launcher itself).
    pub(crate) forks: bool,
    pub(crate) what: &'static str,
}

/// The floor comes first: every ratio is against it.
pub(crate) const FLOOR: usize = 0;
pub(crate) const OURS: usize = 1;
pub(crate) const CHECKED: usize = 3;
pub(crate) const NAIVE: usize = 4;

pub(crate) const SUBJECTS: [Subject; 6] = [
    Subject {
        name: "floor",
        binary: env!("CARGO_BIN_EXE_bench_floor"),
        wants_dir: false,
        forks: false,
        what: "starts and reports, no daemonizing: the cost of merely running a program",
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
        name: "checked",
        binary: env!("CARGO_BIN_EXE_bench_checked"),
        wants_dir: false,
        forks: true,
        what: "`fork` 0.11 `checked_daemon` (chdir /, stdio on /dev/null): double fork, fds closed in the \
               daemon, 19 signals reset, a readiness pipe; its launcher exits after `notify_ready()`",
    },
    Subject {
        name: "naive",
        binary: env!("CARGO_BIN_EXE_bench_naive"),
        wants_dir: false,
        forks: true,
        what: "the classic recipe: fork, setsid, fork, chdir /, umask 0, close() 0..hard, /dev/null on 0-2",
    },
    Subject {
        name: "glibc",
        binary: env!("CARGO_BIN_EXE_bench_glibc"),
        wants_dir: false,
        forks: true,
        what: "daemon(3): one fork, setsid, chdir /, /dev/null on 0-2, closes nothing, no readiness",
    },
];
