//! A local user flooding the kernel's lock table: `fx_lock_flood DIR COUNT` takes COUNT POSIX locks (one
//! byte each, every other byte, a thousand per file in files of its own under DIR), reports `PID locked`
//! to `$FIXTURE_OUT`, and stays. `/proc/locks` then has COUNT more lines, regenerated on every read.
use std::os::fd::AsRawFd;

use nix::libc;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: fx_lock_flood DIR COUNT");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    let mut locked = 0;
    while locked < count {
        let path = std::path::Path::new(&dir).join(format!("flood-{}", files.len()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .expect("flood file");
        for byte in 0..1000.min(count - locked) {
            let lock = libc::flock {
                l_type: libc::F_WRLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: libc::off_t::try_from(byte * 2).unwrap_or(0),
                l_len: 1,
                l_pid: 0,
            };
            // SAFETY: F_SETLK with a live flock struct on a descriptor this process holds.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &raw const lock) } == 0 {
                locked += 1;
            }
        }
        files.push(file);
    }
    tests::report(&format!("{} locked\n", std::process::id()));
    tests::linger();
}
