//! What the kernel says about this process in one read of `/proc/self/status`: how many threads it runs,
//! which signals it ignores, and how large its fd table is. One read (a few µs) replaces listing `/proc/self/task` and querying every
//! signal's disposition one system call at a time. (`/proc/self/stat` is cheaper to read but shows only
//! signals 1 to 31.)

use std::io::Read;

/// The parts of `/proc/self/status` the launch needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStatus {
    /// `Threads`.
    pub(crate) threads: u64,
    /// `SigIgn`: bit `n - 1` set when signal `n` is ignored.
    pub(crate) ignored: u64,
    /// `FDSize`: the slots of the fd table (it grows with the highest fd ever open, and never shrinks).
    pub(crate) fd_table: u64,
}

impl ProcStatus {
    /// Reads `/proc/self/status`; `None` where there is no procfs (another Unix, or a chroot without /proc).
    pub(crate) fn read() -> Option<ProcStatus> {
        if !cfg!(any(target_os = "linux", target_os = "android")) {
            return None;
        }
        // Usually one read of about 1.5 KiB and one that sees the end (read_to_string would grow its buffer
        // from 32 bytes, a read each time); longer files (many supplementary groups) are read whole too.
        let mut bytes = Vec::with_capacity(4096);
        std::fs::File::open("/proc/self/status")
            .ok()?
            .read_to_end(&mut bytes)
            .ok()?;
        ProcStatus::parse(&bytes)
    }

    /// Parses the text of a `/proc/PID/status` file. The fields it needs are ASCII, whatever the bytes of
    /// the others (the command name need not be UTF-8).
    fn parse(status: &[u8]) -> Option<ProcStatus> {
        let field = |name: &[u8]| {
            let value = status
                .split(|b| *b == b'\n')
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(b":"))?;
            std::str::from_utf8(value).ok().map(str::trim)
        };
        Some(ProcStatus {
            threads: field(b"Threads")?.parse().ok()?,
            ignored: u64::from_str_radix(field(b"SigIgn")?, 16).ok()?,
            fd_table: field(b"FDSize")?.parse().ok()?,
        })
    }
}

/// The number of threads from the `/proc/self/task` listing, for when the status file could not be read.
pub(crate) fn count_tasks() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_threads_and_ignored_signals() {
        let status = "Name:\tx\nFDSize:\t64\nThreads:\t3\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
                      SigBlk:\t0000000000000000\nSigIgn:\t0000000080001000\nSigCgt:\t0000000000000000\n";
        assert_eq!(
            ProcStatus::parse(status.as_bytes()),
            Some(ProcStatus {
                threads: 3,
                ignored: 0x8000_1000,
                fd_table: 64
            })
        );
        assert_eq!(ProcStatus::parse(b"Threads:\t1\n"), None);
        let mut odd = b"Name:\tfx_\xe9\n".to_vec();
        odd.extend_from_slice(status.as_bytes());
        assert_eq!(
            ProcStatus::parse(&odd).map(|s| s.threads),
            Some(3),
            "a command name that is not UTF-8"
        );
    }

    #[test]
    fn reads_this_process() {
        let status = ProcStatus::read().expect("/proc/self/status");
        assert!(status.threads >= 1);
        assert_eq!(
            status.ignored & (1 << (libc::SIGPIPE - 1)),
            1 << (libc::SIGPIPE - 1),
            "Rust ignores SIGPIPE"
        );
    }
}
