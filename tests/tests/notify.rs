//! The notify protocol and socket activation against a plain socket playing systemd's part: the messages
//! a live daemon sends, with what it was given (chroot, a failed setup, fork mode, the watchdog), and what
//! it leaves in its environment. The same behaviour under a real systemd is in systemd.rs.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::is_root;
use common::{ChildGuard, LiveDaemon, TempDir, fixture, scratch};

/// A datagram socket in `dir` standing in for systemd's notify socket.
struct Listener {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Listener {
    fn new(dir: &TempDir) -> Listener {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        Listener { socket, path }
    }

    /// The next message, within `within`.
    fn next(&self, within: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(within)).unwrap();
        let mut buffer = [0u8; 4096];
        let n = self.socket.recv(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
    }

    /// Messages until one contains `wanted` (which is returned), failing after 10 s.
    fn until(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(message) = self.next(Duration::from_millis(200)) {
                if message.contains(wanted) {
                    return message;
                }
                seen.push(message);
            }
        }
        panic!("no {wanted:?} on the notify socket; got {seen:?}");
    }
}

/// `fx_systemd` with `args`, under the notify socket, reporting to `out`.
fn under_notify(listener: &Listener, out: &Path, args: &[&str]) -> Command {
    let mut command = fixture("fx_systemd", out);
    command.args(args).env("NOTIFY_SOCKET", &listener.path);
    command
}

#[test]
fn under_chroot_the_socket_opened_before_the_jail_keeps_working() {
    if !is_root() {
        common::skip("chroot needs root");
        return;
    }
    let dir = TempDir::new("notify-chroot");
    let listener = Listener::new(&dir);
    let jail = dir.join("jail");
    std::fs::create_dir(&jail).unwrap();
    // The report is written from inside the jail.
    let mut command = under_notify(
        &listener,
        Path::new("/report"),
        &["--chroot", jail.to_str().unwrap()],
    );
    let child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
    assert_eq!(listener.until("READY=1"), "READY=1");
    assert_eq!(listener.until("STATUS="), "STATUS=serving");
    let report = common::wait_for_report(&jail.join("report"));
    assert_eq!(common::report_pid(&report), child.0.id() as i32);
}

#[test]
fn a_failed_setup_sends_the_launchers_sentence_and_errno() {
    let (dir, out) = scratch("notify-fail");
    let listener = Listener::new(&dir);
    let command = under_notify(&listener, &out, &["--workdir", "/nonexistent-daemon-rt"]);
    let output = common::launch(command);
    assert!(!output.status.success());
    let sentence =
        "cannot change directory to /nonexistent-daemon-rt: No such file or directory (os error 2)";
    assert_eq!(
        common::stderr_text(&output),
        format!("fx_systemd: {sentence}\n")
    );
    assert_eq!(
        listener.until("STATUS="),
        format!("STATUS={sentence}\nERRNO=2")
    );
}

#[test]
fn a_failure_before_manual_ready_sends_status() {
    let (dir, out) = scratch("notify-not-ready");
    let listener = Listener::new(&dir);
    let command = under_notify(&listener, &out, &["--manual", "--then", "fail"]);
    let output = common::launch(command);
    assert!(!output.status.success());
    assert_eq!(
        listener.until("STATUS="),
        "STATUS=the daemon exited before it was ready: cannot bind 127.0.0.1:1: address in use"
    );
}

#[test]
fn the_systemd_variables_leave_the_environment() {
    for foreground in ["1", "0"] {
        let (dir, out) = scratch("notify-env");
        let listener = Listener::new(&dir);
        let mut command = under_notify(&listener, &out, &["--then", "env"]);
        command
            .env("DAEMON_FOREGROUND", foreground)
            .env("LISTEN_PID", "1")
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDNAMES", "http")
            .env("WATCHDOG_USEC", "30000000")
            .env("WATCHDOG_PID", "1");
        let _child;
        let daemon = if foreground == "1" {
            _child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
            LiveDaemon::new(common::report_pid(&common::wait_for_report(&out)))
        } else {
            common::start(command, &out)
        };
        let report = common::wait_for_report(&out);
        assert_eq!(
            report,
            format!("{}\n", daemon.pid),
            "foreground={foreground}"
        );
        assert_eq!(listener.until("STATUS="), "STATUS=serving");
    }
}

#[test]
fn forked_under_a_notify_socket_it_names_its_main_pid_once_the_intermediate_is_gone() {
    let (dir, out) = scratch("notify-mainpid");
    let listener = Listener::new(&dir);
    let mut command = under_notify(&listener, &out, &[]);
    command.env("DAEMON_FOREGROUND", "0");
    let daemon = common::start(command, &out);
    assert_ne!(Some(daemon.pid), daemon.launcher, "forked");
    let message = listener.until("READY=1");
    assert_eq!(message, format!("MAINPID={}\nREADY=1", daemon.pid));
    // Its parent is no longer the intermediate process (which was an fx_systemd), but whoever adopted it.
    let parent = daemon.stat()[1].parse::<i32>().unwrap();
    let parent_comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    assert_ne!(
        parent_comm.trim(),
        "fx_systemd",
        "parent {parent} still the intermediate"
    );
}

/// `Type=forking` with `NotifyAccess=all` (or `Type=notify` with `DAEMON_FOREGROUND=0`): the daemon names
/// its main pid once the intermediate has exited, and knows that process's pid from the fork itself, so
/// a start never waits for a parent that is already gone (it took 10 s about half the time when the pid
/// was read after the fork). A bound that a healthy start cannot miss, not a benchmark: each of 200
/// starts, launcher and `MAINPID=`/`READY=1` included, well within a second.
#[test]
fn forked_under_a_notify_socket_every_start_is_prompt() {
    let (dir, out) = scratch("notify-prompt");
    let listener = Listener::new(&dir);
    let mut slowest = Duration::ZERO;
    for round in 0..200 {
        let _ = std::fs::remove_file(&out);
        let mut command = fixture("fx_forever", &out);
        command
            .env("NOTIFY_SOCKET", &listener.path)
            .env("DAEMON_FOREGROUND", "0");
        let began = Instant::now();
        let daemon = common::start(command, &out);
        let message = listener.until("READY=1");
        let took = began.elapsed();
        assert_eq!(message, format!("MAINPID={}\nREADY=1", daemon.pid));
        let stat = daemon.stat();
        assert_ne!(
            stat[1], stat[3],
            "round {round}: the parent is still the intermediate"
        );
        assert!(
            took < Duration::from_secs(1),
            "round {round}: the start took {took:?}"
        );
        slowest = slowest.max(took);
    }
    println!("slowest of 200 starts under a notify socket: {slowest:?}");
}

#[test]
fn extend_timeout_in_fork_mode_moves_the_launchers_deadline() {
    let (_dir, out) = scratch("notify-extend-fork");
    let mut command = fixture("fx_systemd", &out);
    // The body takes 3 s before ready, the timeout is 1 s: only the extension lets the start succeed.
    command.args(["--manual", "--timeout-secs", "1", "--then", "extend"]);
    let started = Instant::now();
    let daemon = common::start(command, &out);
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(daemon.alive());
}

#[test]
fn extend_timeout_and_stopping_under_notify() {
    let (dir, out) = scratch("notify-extend");
    let listener = Listener::new(&dir);
    let mut command = under_notify(&listener, &out, &["--manual", "--then", "extend"]);
    let child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
    assert_eq!(listener.until("EXTEND"), "EXTEND_TIMEOUT_USEC=20000000");
    assert_eq!(listener.until("READY=1"), "READY=1");
    assert_eq!(listener.until("STATUS="), "STATUS=serving");
    common::wait_for_report(&out);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(
        listener.until("STOPPING"),
        "STOPPING=1",
        "when main returns"
    );
}

#[test]
fn bad_notify_addresses_are_refused_with_the_reason() {
    let long = format!("/tmp/{}", "n".repeat(200));
    let cases = [
        (
            long.as_str(),
            "NOTIFY_SOCKET is 205 bytes long, and a socket address holds at most 107",
        ),
        (
            "vsock:2:1234",
            "vsock notify addresses (systemd 254 and later, in virtual machines) are not supported; \
             run the service with a local NOTIFY_SOCKET (a path or an @abstract name)",
        ),
        (
            "relative/notify",
            "NOTIFY_SOCKET must be an absolute path or an @abstract name",
        ),
    ];
    for (address, why) in cases {
        let (_dir, out) = scratch("notify-bad");
        let mut command = fixture("fx_systemd", &out);
        command.env("NOTIFY_SOCKET", address);
        let output = common::launch(command);
        assert!(!output.status.success(), "{address}");
        assert_eq!(
            common::stderr_text(&output),
            format!("fx_systemd: cannot notify systemd at {address}: {why}\n")
        );
    }
}

#[test]
fn the_automatic_watchdog_pings_at_half_the_interval_for_our_pid_only() {
    for (args, pid_is_ours, pings) in [
        (&["--watchdog-auto"][..], true, true),
        (&["--watchdog-auto"][..], false, false),
        (&[][..], true, false),
    ] {
        let (dir, out) = scratch("notify-watchdog");
        let listener = Listener::new(&dir);
        let mut command = under_notify(&listener, &out, args);
        command.env("WATCHDOG_USEC", "400000");
        if !pid_is_ours {
            command.env("WATCHDOG_PID", "1");
        }
        let _child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
        common::wait_for_report(&out);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut count = 0;
        while Instant::now() < deadline {
            if listener.next(Duration::from_millis(100)).as_deref() == Some("WATCHDOG=1") {
                count += 1;
            }
        }
        if pings {
            // Every 200 ms: about 15 in 3 s; a loaded machine may delay some.
            assert!(count >= 4, "{count} pings in 3 s");
        } else {
            assert_eq!(count, 0, "{args:?} ours={pid_is_ours}");
        }
    }
}

/// dup2(fd, 3) in a child before exec: fd 3 without close-on-exec, as systemd passes it.
fn as_fd_3(fd: i32) -> std::io::Result<()> {
    // dup2 onto itself changes nothing, so a socket that already is fd 3 would keep the close-on-exec flag
    // Rust gave it and be gone at exec: clear the flag instead, as systemd hands fds over.
    let result = if fd == 3 {
        // SAFETY: clears FD_CLOEXEC on fd 3 of the child being set up; fcntl is async-signal-safe.
        unsafe { libc::fcntl(3, libc::F_SETFD, 0) }
    } else {
        // SAFETY: dup2 onto fd 3 of the child being set up; it is async-signal-safe.
        unsafe { libc::dup2(fd, 3) }
    };
    if result == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `fx_systemd` started through `sh` so that `LISTEN_PID` can name it, with `socket` as fd 3.
fn activated(socket: &impl AsRawFd, out: &Path, name: &str) -> ChildGuard {
    let mut command = Command::new("/bin/sh");
    command
        .args([
            "-c",
            "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=$0 exec \"$1\" --then \"listen:$0\"",
            name,
            common::exe("fx_systemd"),
        ])
        .env("FIXTURE_OUT", out)
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env("DAEMON_FOREGROUND", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let fd = socket.as_raw_fd();
    // SAFETY: the hook only calls dup2, which is async-signal-safe, and allocates nothing.
    unsafe { command.pre_exec(move || as_fd_3(fd)) };
    ChildGuard(command.spawn().unwrap())
}

#[test]
fn socket_activation_hands_over_the_named_listener_close_on_exec() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (_dir, out) = scratch("listen");
    let child = activated(&listener, &out, "echo");
    let report = common::wait_for_report(&out);
    let pid = child.0.id() as i32;
    assert_eq!(report, format!("{pid} ok\n"));
    let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/3")).unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_ne!(
        flags & libc::O_CLOEXEC as u32,
        0,
        "fd 3 is close-on-exec: {fdinfo}"
    );
    drop(listener); // the daemon's copy serves
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut served = String::new();
    stream.read_to_string(&mut served).unwrap();
    assert_eq!(served, format!("served by {pid}\n"));
}

#[test]
fn socket_activation_says_what_is_wrong_with_a_socket() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_dir, out) = scratch("listen-udp");
    let child = activated(&udp, &out, "echo");
    let report = common::wait_for_report(&out);
    assert_eq!(
        report,
        format!(
            "{} error: the socket systemd passed as \"echo\" (fd 3) is an IPv4 UDP socket, not a listening TCP socket\n",
            child.0.id()
        )
    );
    // Another name, or LISTEN_PID naming another process: nothing is taken.
    let (_dir, out) = scratch("listen-other");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut command = fixture("fx_systemd", &out);
    command
        .args(["--then", "listen:echo"])
        .env("DAEMON_FOREGROUND", "1")
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "echo");
    let fd = tcp.as_raw_fd();
    // SAFETY: the hook only calls dup2, which is async-signal-safe, and allocates nothing.
    unsafe { command.pre_exec(move || as_fd_3(fd)) };
    let child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
    let report = common::wait_for_report(&out);
    assert_eq!(report, format!("{} none\n", child.0.id()));
    let fds = LiveDaemon::new(child.0.id() as i32).fds();
    assert!(
        fds.iter().all(|(fd, _)| *fd != 3),
        "fd 3 of another process closed: {fds:?}"
    );
    drop(child);
}

/// Issue 18.6: `LISTEN_PID` naming the process itself makes the runtime adopt (and keep after the user
/// switch) only what systemd passes: sockets and FIFOs, and another kind of file only under a name of its
/// own. A regular file its launcher had open as fd 3 (`/etc/passwd` here), passed without a name, is
/// closed with the other inherited fds.
#[test]
fn socket_activation_adopts_no_plain_file() {
    let passwd = std::fs::File::open("/etc/passwd").unwrap();
    let (_dir, out) = scratch("listen-file");
    let mut command = Command::new("/bin/sh");
    command
        .args([
            "-c",
            "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --then serve",
            common::exe("fx_systemd"),
        ])
        .env("FIXTURE_OUT", &out)
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env("DAEMON_FOREGROUND", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let fd = passwd.as_raw_fd();
    // SAFETY: the hook only calls dup2, which is async-signal-safe, and allocates nothing.
    unsafe { command.pre_exec(move || as_fd_3(fd)) };
    let child = ChildGuard(command.spawn().unwrap());
    let report = common::wait_for_report(&out);
    assert_eq!(report, format!("{}\n", child.0.id()));
    let fds = LiveDaemon::new(child.0.id() as i32).fds();
    assert!(
        fds.iter().all(|(_, target)| target != "/etc/passwd"),
        "the passed regular file was adopted: {fds:?}"
    );
    drop(child);
}

/// Issue 17.8: under systemd, a failed reopen of the log files (the daemon's user may not create the new
/// file in a directory of root's) is said where the operator looks: `STATUS=` with the OS error's text,
/// besides the line in the old file.
#[test]
fn a_failed_reopen_is_said_in_status() {
    if !common::is_root() {
        common::skip("a daemon running as nobody needs root to start");
        return;
    }
    let (dir, out) = scratch("notify-reopen");
    let listener = Listener::new(&dir);
    let reports = dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::os::unix::fs::chown(&reports, Some(common::NOBODY), Some(common::NOBODY)).unwrap();
    let out = reports.join(out.file_name().unwrap());
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("app.log");
    let mut command = fixture("fx_control", &out);
    command
        .env("FX_PID_FILE", dir.join("app.pid"))
        .env("FX_USER", "nobody")
        .env("FX_STDERR", &log)
        .env("FX_REOPEN_ON", "SIGUSR1")
        .env("NOTIFY_SOCKET", &listener.path);
    let child = ChildGuard(command.stdout(Stdio::null()).spawn().unwrap());
    assert_eq!(listener.until("READY=1"), "READY=1");
    let pid = common::report_pid(&common::wait_for_report(&out));
    assert_eq!(pid, child.0.id() as i32, "in the foreground");
    std::fs::rename(&log, logs.join("app.log.1")).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    assert_eq!(
        listener.until("STATUS="),
        format!(
            "STATUS=cannot reopen log file {}: Permission denied (os error 13)",
            log.display()
        )
    );
}
