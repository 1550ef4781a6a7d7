//! What the kernel says about this process in one read of `/proc/self/status`: how many threads it runs,
//! which signals it ignores, and how large its fd table is. One read (a few µs) replaces listing `/proc/self/task` and querying every
//! signal's disposition one system call at a time. (`/proc/self/stat` is cheaper to read but shows only
//! signals 1 to 31.)

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
        // One read into a buffer large enough for the whole file (about 1.5 KiB), where `read_to_string`
        // would make eight reads, growing its buffer.
        let mut buffer = [0u8; 8192];
        let mut file = std::fs::File::open("/proc/self/status").ok()?;
        let mut len = 0;
        while len < buffer.len() {
            match std::io::Read::read(&mut file, &mut buffer[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        ProcStatus::parse(std::str::from_utf8(&buffer[..len]).ok()?)
    }

    /// Parses the text of a `/proc/PID/status` file.
    fn parse(status: &str) -> Option<ProcStatus> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        Some(ProcStatus {
            threads: field("Threads")?.parse().ok()?,
            ignored: u64::from_str_radix(field("SigIgn")?, 16).ok()?,
            fd_table: field("FDSize")?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_threads_and_ignored_signals() {
        let status = "Name:\tx\nFDSize:\t64\nThreads:\t3\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
                      SigBlk:\t0000000000000000\nSigIgn:\t0000000080001000\nSigCgt:\t0000000000000000\n";
        assert_eq!(
            ProcStatus::parse(status),
            Some(ProcStatus {
                threads: 3,
                ignored: 0x8000_1000,
                fd_table: 64
            })
        );
        assert_eq!(ProcStatus::parse("Threads:\t1\n"), None);
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
