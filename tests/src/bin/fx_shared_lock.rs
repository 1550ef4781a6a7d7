//! A lock whose taker no longer has the file open: `fx_shared_lock LOCK_FILE REPORT`.
//!
//! The process opens `LOCK_FILE` and forks; the child takes the exclusive `flock` on the shared open file,
//! closes its descriptor and stays alive; the parent keeps the descriptor (so the lock stays held) and stays
//! alive too. `/proc/locks` then names the child, a live process that does not have the file open: exactly
//! what a recycled pid would look like. Both pids go to `REPORT` as `PARENT CHILD`. Both exit after 60 s.
use std::os::fd::AsRawFd;

use nix::libc;
use nix::unistd::{ForkResult, fork};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(lock), Some(report)) = (args.next(), args.next()) else {
        eprintln!("usage: fx_shared_lock LOCK_FILE REPORT");
        std::process::exit(2);
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock)
        .expect("open the lock file");
    let parent = std::process::id();
    // SAFETY: this program is single-threaded.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: flock(2) on an fd `file` owns.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            assert_eq!(locked, 0, "flock");
            drop(file);
            let tmp = format!("{report}.tmp");
            std::fs::write(&tmp, format!("{parent} {}\n", std::process::id())).expect("report");
            std::fs::rename(&tmp, &report).expect("report");
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        ForkResult::Parent { .. } => {
            std::thread::sleep(std::time::Duration::from_secs(60));
            drop(file);
        }
    }
}
