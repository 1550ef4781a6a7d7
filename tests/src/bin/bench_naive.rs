//! Benchmark subject `naive`: a naive port of the classic recipe (Stevens, APUE 13.3): fork and exit the
//! launcher, setsid, fork again, chdir `/`, umask 0, close(2) every fd from 0 to the hard `RLIMIT_NOFILE`,
//! then /dev/null on 0, 1 and 2. `bench_naive FIFO`: the daemon writes `PID\n` to FIFO (an absolute path),
//! then exits. See tests/benches/startup.rs.
use std::os::fd::IntoRawFd;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{ForkResult, chdir, fork, setsid};

fn main() {
    let fifo = tests::bench::fifo("bench_naive");
    let hard = match getrlimit(Resource::RLIMIT_NOFILE) {
        // As the recipe does: no limit means 1024.
        Ok((_, RLIM_INFINITY)) => 1024,
        Ok((_, hard)) => hard.min(i32::MAX as _) as i32,
        Err(errno) => fail("getrlimit", errno),
    };
    // SAFETY: this program never starts a thread, so the child is a full copy of the only thread.
    match unsafe { fork() } {
        Err(errno) => fail("fork", errno),
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
    }
    if let Err(errno) = setsid() {
        fail("setsid", errno);
    }
    // SAFETY: still the only thread of this process.
    match unsafe { fork() } {
        Err(errno) => fail("fork", errno),
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
    }
    if let Err(errno) = chdir("/") {
        fail("chdir", errno);
    }
    umask(Mode::empty());
    for fd in 0..hard {
        // SAFETY: close(2) takes a number and touches no memory. No Rust object of this program owns an fd
        // here (std's stdio handles use 0, 1 and 2 by number, and are pointed at /dev/null just below);
        // a number that is not open only returns EBADF.
        unsafe { nix::libc::close(fd) };
    }
    // The lowest free number is 0: /dev/null becomes stdin, then is duplicated onto 1 and 2.
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        std::process::exit(1)
    };
    if nix::unistd::dup2_stdout(&null).is_err() || nix::unistd::dup2_stderr(&null).is_err() {
        std::process::exit(1);
    }
    // Keep it open as stdin.
    let _ = null.into_raw_fd();
    tests::bench::report(&fifo);
}

fn fail(step: &str, errno: nix::errno::Errno) -> ! {
    eprintln!("bench_naive: {step}: {errno}");
    std::process::exit(1)
}
