//! What the kernel says about this process in one read of `/proc/self/status`: how many threads it runs,
//! which signals it ignores, and how large its fd table is.
//!
//! Measured on Linux 6.18 (a 2-core VM), the read costs about 15 µs, nearly all of it the kernel
//! generating the text. Each fact has a cheaper source on its own (the link count of `/proc/self/task`
//! for the threads, the size of `/proc/self/fd` for the open fds, 1.5 to 3 µs each), but the ignored
//! signals do not: asking `sigaction` for each of 62 signals costs 15 to 20 µs, and handing the set over
//! from a process off the critical path needs a shared mapping or a pipe that cost as much. The daemon's
//! time to ready went up with each of those (see BENCHMARKS.md), so this one read stays, but where only
//! the ignored signals are needed: at the program's entry with a small fd table (launch/mod.rs,
//! `launch_status`), 62 `sigaction` queries cost less than the read (10 against 24 µs there). It is three
//! system calls (open, read into a stack buffer, close; no `statx`, no heap) plus an `fstatfs` that
//! checks the file is procfs: a directory made to look like `/proc` (in a chroot) cannot fake a
//! single-threaded process. (`/proc/self/stat` costs as much and shows only signals 1 to 31.)

/// The parts of `/proc/self/status` the launch needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStatus {
    /// `Threads`: read only in sys/threads.rs, where a count of one makes a `SingleThread`.
    pub(super) threads: u64,
    /// `SigIgn`: bit `n - 1` set when signal `n` is ignored.
    pub(crate) ignored: u64,
    /// `FDSize`: the slots of the fd table (it grows with the highest fd ever open, and never shrinks).
    pub(crate) fd_table: u64,
}

impl ProcStatus {
    /// A status with `threads` threads, for tests of what reads it.
    #[cfg(test)]
    pub(crate) fn with_threads(threads: u64) -> ProcStatus {
        ProcStatus {
            threads,
            ignored: 0,
            fd_table: 64,
        }
    }

    /// Reads `/proc/self/status`; `None` where there is no procfs (another Unix, or a chroot without /proc,
    /// or something else mounted there).
    pub(crate) fn read() -> Option<ProcStatus> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsFd;

            use nix::fcntl::OFlag;
            use nix::sys::stat::Mode;

            let file = nix::fcntl::open(
                "/proc/self/status",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            let fs = nix::sys::statfs::fstatfs(file.as_fd()).ok()?;
            if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
                return None;
            }
            // The file is about 1.5 KiB; its fields come in one read. A longer one (thousands of
            // supplementary groups) is read on into a growing buffer.
            let mut buffer = [0u8; 4096];
            let mut filled = 0;
            while filled < buffer.len() {
                match nix::unistd::read(&file, &mut buffer[filled..]) {
                    Ok(0) => return ProcStatus::parse(&buffer[..filled]),
                    Ok(n) => filled += n,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return None,
                }
            }
            let mut bytes = buffer.to_vec();
            std::io::Read::read_to_end(&mut std::fs::File::from(file), &mut bytes).ok()?;
            ProcStatus::parse(&bytes)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }

    /// Parses the text of a `/proc/PID/status` file. The fields it needs are ASCII, whatever the bytes of
    /// the others (the command name need not be UTF-8).
    #[cfg(any(target_os = "linux", target_os = "android", test))]
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
