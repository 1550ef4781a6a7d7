//! Running one cell: a subject under a column's limits, timed from spawn to its report and to its
//! launcher's exit, with every process it started reaped before the next run.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::Mode;

use crate::columns::Column;
use crate::die;
use crate::subjects::Subject;

/// How long one run may take before it counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after it reported, and descendants to be reaped.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One run's measures.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    /// Spawn -> the daemon's pid read from the FIFO, µs.
    pub(crate) ready: f64,
    /// Spawn -> the launcher's exit seen, µs.
    pub(crate) exited: f64,
    /// CPU time (user + system) of every process of the run, µs.
    pub(crate) cpu: f64,
    /// Minor page faults of every process of the run.
    pub(crate) faults: f64,
}

/// The FIFO the daemons report on, in a private temporary directory.
pub(crate) struct Bench {
    pub(crate) dir: PathBuf,
    fifo_path: PathBuf,
    fifo: OwnedFd,
    /// Bytes read from the FIFO but not yet a whole line.
    pending: Vec<u8>,
    /// The socket playing systemd's notify socket in the notify column, and its path.
    notify: std::os::unix::net::UnixDatagram,
    notify_path: PathBuf,
}

impl Bench {
    /// A private temporary directory holding the FIFO (and `ours_full`'s files), and the FIFO opened here
    /// for reading and writing, so that a subject's `open(O_WRONLY)` never blocks and reads never see EOF.
    pub(crate) fn new() -> Bench {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("daemon-bench-{}-{stamp:x}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            die(&format!("cannot create {}: {e}", dir.display()));
        }
        // Absolute: the daemons run in `/`.
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let fifo_path = dir.join("ready.fifo");
        if let Err(errno) = nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600)) {
            let _ = std::fs::remove_dir_all(&dir);
            die(&format!("mkfifo {}: {errno}", fifo_path.display()));
        }
        let fifo = nix::fcntl::open(
            &fifo_path,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|errno| {
            let _ = std::fs::remove_dir_all(&dir);
            die(&format!("open {}: {errno}", fifo_path.display()))
        });
        let notify_path = dir.join("notify.sock");
        let notify = std::os::unix::net::UnixDatagram::bind(&notify_path)
            .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
            .unwrap_or_else(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                die(&format!("bind {}: {e}", notify_path.display()))
            });
        Bench {
            dir,
            fifo_path,
            fifo,
            pending: Vec::new(),
            notify,
            notify_path,
        }
    }

    /// Runs `subject` once under `column`'s limits; returns its times once every process it started is gone.
    pub(crate) fn run(&mut self, subject: &Subject, column: &Column) -> Result<Sample, String> {
        let mut command = Command::new(subject.binary);
        command.arg(&self.fifo_path);
        if subject.wants_dir {
            command.arg(&self.dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("DAEMON_FOREGROUND");
        if column.notify {
            command
                .env("NOTIFY_SOCKET", &self.notify_path)
                .env("DAEMON_FOREGROUND", "0");
        }
        let nofile = column.nofile;
        let high_fd = column.high_fd;
        let setup = move || {
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile)?;
            // Only 0-2 (and the column's fd) reach the subject, whatever the shell that ran cargo left
            // open: an fd inherited by accident would make one subject close it and another not.
            // SAFETY: in the child before exec; close_range only marks fds above 2 close-on-exec.
            if unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = high_fd {
                // stdin (/dev/null by then) at the highest number the limit allows; dup2 leaves the
                // copy without close-on-exec, so the subject inherits it.
                // SAFETY: in the child before exec, where no Rust object owns `fd`.
                if unsafe { libc::dup2(0, fd) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the closure runs in the forked child before exec and only makes three async-signal-safe
        // system calls (setrlimit, close_range, dup2) on integers it captured by value: no allocation, no
        // lock.
        unsafe {
            command.pre_exec(setup);
        }

        let before = children_usage()?;
        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", subject.binary))?;
        let launcher = child.id() as i32;
        let pidfd = pidfd_open(launcher).map_err(|e| format!("pidfd_open({launcher}): {e}"))?;
        let deadline = start + RUN_TIMEOUT;
        let mut ready: Option<(Duration, i32)> = None;
        let mut exited: Option<Duration> = None;
        let mut failure = None;
        while ready.is_none() || exited.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failure = Some(format!(
                    "no {} within {RUN_TIMEOUT:?}",
                    if ready.is_none() {
                        "report on the FIFO"
                    } else {
                        "launcher exit"
                    }
                ));
                break;
            }
            let mut fds = [
                PollFd::new(self.fifo.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            // Only what is still awaited: a reaped launcher's pidfd stays readable, and polling it again
            // would spin this process on a CPU the daemon needs.
            let watched = match (ready.is_none(), exited.is_none()) {
                (true, true) => &mut fds[..],
                (true, false) => &mut fds[..1],
                _ => &mut fds[1..],
            };
            let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            match poll(watched, PollTimeout::from(millis)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(errno) => return Err(format!("poll: {errno}")),
            }
            // One timestamp for whatever woke us, taken before handling either event.
            let now = start.elapsed();
            let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let fifo_ready = readable(&fds[0]);
            let launcher_gone = readable(&fds[1]);
            if fifo_ready
                && ready.is_none()
                && let Some(pid) = self.read_pid()?
            {
                ready = Some((now, pid));
            }
            if launcher_gone && exited.is_none() {
                exited = Some(now);
                let status = child.wait().map_err(|e| format!("wait: {e}"))?;
                if !status.success() {
                    failure = Some(format!("the launcher exited with {status}"));
                }
                if ready.is_none() && failure.is_none() && !subject.forks {
                    // The floor reports before it exits: its report must already be there.
                    if let Some(pid) = self.read_pid()? {
                        ready = Some((now, pid));
                    }
                }
            }
            if failure.is_some() && ready.is_none() {
                break;
            }
        }

        // Whatever happened, leave nothing running: the launcher, the reported daemon, every orphan.
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let daemon = ready.map(|(_, pid)| pid);
        if let Some(pid) = daemon
            && pid != launcher
        {
            wait_gone(pid)?;
        }
        reap_descendants()?;
        // What the notify column's daemons said: read, so that the socket never fills.
        let mut message = [0u8; 512];
        while self.notify.recv(&mut message).is_ok() {}

        if let Some(failure) = failure {
            return Err(failure);
        }
        let (Some((ready_at, daemon)), Some(exited_at)) = (ready, exited) else {
            return Err("incomplete run".into());
        };
        if subject.forks == (daemon == launcher) {
            return Err(format!(
                "reported pid {daemon}, launcher pid {launcher}: {}",
                if subject.forks {
                    "it did not daemonize"
                } else {
                    "the floor should report from the launcher"
                }
            ));
        }
        // Every process of the run has been reaped (by us, or by the launcher): their usage is in ours.
        let after = children_usage()?;
        Ok(Sample {
            ready: ready_at.as_secs_f64() * 1e6,
            exited: exited_at.as_secs_f64() * 1e6,
            cpu: after.0 - before.0,
            faults: after.1 - before.1,
        })
    }

    /// Reads what the FIFO holds; the pid on the first whole line, if there is one.
    fn read_pid(&mut self) -> Result<Option<i32>, String> {
        let mut chunk = [0u8; 256];
        loop {
            match nix::unistd::read(&self.fifo, &mut chunk) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(format!("read from the FIFO: {errno}")),
            }
        }
        let Some(end) = self.pending.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let line: Vec<u8> = self.pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..end]).into_owned();
        if !self.pending.is_empty() {
            return Err(format!(
                "unexpected extra report on the FIFO: {:?}",
                String::from_utf8_lossy(&self.pending)
            ));
        }
        text.parse()
            .map(Some)
            .map_err(|_| format!("bad report on the FIFO: {text:?}"))
    }

    pub(crate) fn cleanup(&self) {
        let _ = reap_descendants();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pidfd for `pid` (close-on-exec), readable once the process has exited.
fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open(2) takes a pid and a flags word and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the daemon `pid` (a descendant, so its pid cannot be reused before we reap it) has exited;
/// SIGKILLs it if it lingers.
fn wait_gone(pid: i32) -> Result<(), String> {
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(()),
        Err(errno) => return Err(format!("pidfd_open({pid}): {errno}")),
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(EXIT_TIMEOUT.as_millis()).unwrap_or(u16::MAX);
    loop {
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => break,
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(format!("poll: {errno}")),
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    Err(format!(
        "daemon {pid} was still running {EXIT_TIMEOUT:?} after it reported; killed"
    ))
}

/// Reaps every child (as a subreaper, every orphaned descendant becomes one) until none is left; kills
/// those still alive at the deadline.
fn reap_descendants() -> Result<(), String> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let mut killed = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes the status into a valid c_int of ours.
        let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
        if pid > 0 {
            continue;
        }
        if pid < 0 {
            return match Errno::last() {
                Errno::ECHILD if killed.is_empty() => Ok(()),
                Errno::ECHILD => Err(format!("killed lingering processes {killed:?}")),
                Errno::EINTR => continue,
                errno => Err(format!("waitpid: {errno}")),
            };
        }
        if Instant::now() >= deadline {
            for child in children() {
                if !killed.contains(&child) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    killed.push(child);
                }
            }
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The pids whose parent is this process, from /proc.
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect()
}

/// CPU time (µs) and minor page faults of every reaped descendant so far (`RUSAGE_CHILDREN`).
fn children_usage() -> Result<(f64, f64), String> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| format!("getrusage: {e}"))?;
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e6 + t.tv_usec() as f64;
    Ok((
        micros(usage.user_time()) + micros(usage.system_time()),
        usage.minor_page_faults() as f64,
    ))
}
