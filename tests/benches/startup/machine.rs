//! What the numbers were measured on.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use nix::sys::resource::RLIM_INFINITY;

pub(crate) struct Machine {
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
    pub(crate) fn describe(
        own_soft: u64,
        own_hard: u64,
        nr_open: Option<u64>,
        largest: u64,
    ) -> Machine {
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

    pub(crate) fn lines(&self) -> Vec<String> {
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

    pub(crate) fn text(&self) -> String {
        self.lines().join("\n")
    }
}

pub(crate) fn read_trimmed(path: &str) -> Option<String> {
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
