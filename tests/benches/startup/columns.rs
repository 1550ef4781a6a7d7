//! The columns: the subjects' `RLIMIT_NOFILE`, and one inherited fd at the top of the largest limit.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};

use crate::subjects::{FLOOR, SUBJECTS};

/// The child's `RLIMIT_NOFILE` (soft = hard) and, optionally, one inherited fd at a high number, or a
/// notify socket with `DAEMON_FOREGROUND=0` (systemd `Type=forking` with `NotifyAccess=all`).
pub(crate) struct Column {
    pub(crate) label: String,
    pub(crate) nofile: u64,
    pub(crate) high_fd: Option<i32>,
    /// `NOTIFY_SOCKET` set and forking forced: the daemon names its main pid once the intermediate has
    /// exited, then `READY=1` (the peers ignore the socket).
    pub(crate) notify: bool,
}

/// 1024, then every fourth power of two below the largest limit (skipping one within 1.5x of it), then
/// the largest; the largest again with an fd open at its top; and 1024 under a notify socket.
pub(crate) fn columns(largest: u64) -> Vec<Column> {
    let mut limits = vec![largest.min(1024)];
    let mut next = 4096;
    while next * 3 / 2 <= largest {
        limits.push(next);
        next *= 4;
    }
    if largest > 1024 {
        limits.push(largest);
    }
    let mut columns: Vec<Column> = limits
        .into_iter()
        .map(|nofile| Column {
            label: format!("nofile {nofile}"),
            nofile,
            high_fd: None,
            notify: false,
        })
        .collect();
    columns.push(Column {
        label: format!("nofile {largest}, fd {} open", largest - 1),
        nofile: largest,
        high_fd: Some(i32::try_from(largest - 1).unwrap_or(i32::MAX)),
        notify: false,
    });
    let first = largest.min(1024);
    columns.push(Column {
        label: format!("nofile {first}, notify + fork"),
        nofile: first,
        high_fd: None,
        notify: true,
    });
    columns
}

/// The largest `RLIMIT_NOFILE` a child can get: `BENCH_NOFILE`, else `fs.nr_open` if a child may raise its
/// hard limit that far (root with `CAP_SYS_RESOURCE`), else our hard limit. Probed by starting the floor
/// with the limit set in `pre_exec`: a refused setrlimit makes the spawn fail.
pub(crate) fn largest_nofile(own_hard: u64, nr_open: Option<u64>) -> u64 {
    let forced = std::env::var("BENCH_NOFILE").ok().map(|v| {
        v.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| crate::die(&format!("BENCH_NOFILE={v:?} is not a number")))
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
        let mut command = Command::new(SUBJECTS[FLOOR].binary);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let set = move || Ok(setrlimit(Resource::RLIMIT_NOFILE, limit, limit)?);
        // SAFETY: only setrlimit, an async-signal-safe system call, on a captured integer.
        unsafe {
            command.pre_exec(set);
        }
        // Without arguments the floor exits at once with a usage message.
        if let Ok(mut child) = command.spawn() {
            let _ = child.wait();
            return limit;
        }
        if forced.is_some() {
            crate::die(&format!(
                "a child cannot get RLIMIT_NOFILE {limit} (BENCH_NOFILE)"
            ));
        }
    }
    crate::die("no RLIMIT_NOFILE could be set for a child")
}
