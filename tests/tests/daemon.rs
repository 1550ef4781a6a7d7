//! The core: real daemons started from fixture binaries and observed from outside, through /proc.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{
    LiveDaemon, TempDir, before_exec, check, fixture, launch, scratch, start, stderr_text,
};

/// The properties every daemon has: another process, reparented away from the launcher, not a session
/// leader, in a new session whose id is not the launcher's, its process group the session, no terminal.
fn assert_detached(daemon: &LiveDaemon, launcher_pid: i32, launcher_sid: i32) {
    assert!(launcher_pid > 1);
    let stat = daemon.stat();
    let (ppid, pgrp, sid, tty): (i32, i32, i32, i32) = (
        stat[1].parse().unwrap(),
        stat[2].parse().unwrap(),
        stat[3].parse().unwrap(),
        stat[4].parse().unwrap(),
    );
    assert_ne!(daemon.pid, launcher_pid, "the daemon is another process");
    assert_ne!(ppid, launcher_pid, "reparented away from the launcher");
    assert_ne!(sid, daemon.pid, "not a session leader");
    assert_ne!(sid, launcher_sid, "a new session");
    assert_eq!(pgrp, sid, "its process group is the session's");
    assert_eq!(tty, 0, "no controlling terminal");
}

/// Only 0, 1 and 2 are open, all on /dev/null.
fn assert_stdio_null(daemon: &LiveDaemon) {
    let fds = daemon.fds();
    let expected: Vec<(i32, String)> = (0..3).map(|fd| (fd, "/dev/null".to_string())).collect();
    assert_eq!(fds, expected);
}

fn our_sid() -> i32 {
    nix::unistd::getsid(None).unwrap().as_raw()
}

/// The attribute's defaults and a configured umask and workdir: one table, one set of checks.
#[test]
fn attribute_keys_are_applied_to_a_detached_daemon() {
    // (fixture, expected cwd, expected umask as /proc/PID/status shows it)
    let cases = [
        ("fx_default", "/", "0000"),
        ("fx_configured", "/tmp", "0027"),
    ];
    for (name, cwd, umask) in cases {
        let (_dir, out) = scratch(name);
        // The launcher exited 0 only after the daemon was ready: its setup is complete by now.
        let daemon = start(fixture(name, &out), &out);
        assert_detached(&daemon, daemon.launcher.unwrap(), our_sid());
        assert_eq!(
            std::fs::read_link(daemon.proc("cwd")).unwrap(),
            std::path::Path::new(cwd),
            "{name}: cwd"
        );
        assert_eq!(daemon.status("Umask"), [umask], "{name}: umask");
        assert_stdio_null(&daemon);
    }
}

/// The shapes users write first run as daemons: a `fn main()` that never returns, and an `async fn main`
/// server under `#[tokio::main]` that accepts for ever (it serves here, from its daemon).
#[test]
fn a_main_that_never_returns_and_an_async_server_run_as_daemons() {
    let (_dir, out) = scratch("forever");
    let daemon = start(fixture("fx_forever", &out), &out);
    assert_detached(&daemon, daemon.launcher.unwrap(), our_sid());
    assert_stdio_null(&daemon);
    std::thread::sleep(Duration::from_millis(100));
    assert!(daemon.alive(), "the parked daemon is still there");

    let (_dir, out) = scratch("server");
    let daemon = start(fixture("fx_server", &out), &out);
    assert_detached(&daemon, daemon.launcher.unwrap(), our_sid());
    let report = common::wait_for_report(&out);
    let port: u16 = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut stream, b"hello daemon\n").unwrap();
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut reply).unwrap();
    assert_eq!(reply, "hello daemon\n");
}

/// The `log` example's promise: its parent is init (or the nearest subreaper), never the intermediate
/// process, whose pid is the daemon's session id. With `readiness = "auto"` the body once ran while the
/// intermediate was still there, in about half of the runs: 50 runs, every one checked.
#[test]
fn the_log_examples_parent_is_never_the_intermediate() {
    let example = std::path::Path::new(env!("CARGO_BIN_EXE_fx_default"))
        .parent()
        .unwrap()
        .join("examples/log");
    if !example.exists() {
        common::skip("the log example is not built (cargo test --workspace builds it)");
        return;
    }
    let log = std::path::Path::new("/tmp/daemon-runtime-example.log");
    for run in 0..50 {
        let _ = std::fs::remove_file(log);
        let output = launch(std::process::Command::new(&example));
        assert!(
            output.status.success(),
            "run {run}: {}",
            stderr_text(&output)
        );
        let text = common::wait_for_report_containing(log, "effective group ID");
        let field = |name: &str| -> i32 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(" = "))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| panic!("run {run}: no {name} in {text:?}"))
        };
        let (pid, parent, session) = (
            field("process ID"),
            field("parent process ID"),
            field("session ID"),
        );
        assert_ne!(parent, session, "run {run}: the parent is the intermediate");
        assert_ne!(pid, session, "run {run}: a session leader");
    }
    let _ = std::fs::remove_file(log);
}

/// Launched from a real pseudo-terminal that is the launcher's controlling terminal, with inherited fds at
/// low and high numbers: the daemon has no terminal, only /dev/null on 0-2, and survives the hang-up.
#[test]
fn detaches_from_a_controlling_terminal_and_closes_inherited_fds() {
    let (_dir, out) = scratch("pty");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let high = (hard.min(1 << 20) - 1) as i32;
    let extra = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/"))
        .unwrap();
    let (slave, extra_fd) = (pty.slave.as_raw_fd(), common::high_fd(extra));
    let mut command = fixture("fx_default", &out);
    command.stdin(pty.slave.try_clone().unwrap());
    let child = move || {
        // SAFETY: setsid takes no arguments and touches no memory.
        check(unsafe { libc::setsid() })?;
        // SAFETY: TIOCSCTTY takes an integer argument; `slave` is a pty fd this child inherited.
        check(unsafe { libc::ioctl(slave, libc::TIOCSCTTY as _, 0) })?;
        for (source, target) in [(slave, 1), (slave, 2), (extra_fd, 5), (extra_fd, high)] {
            // SAFETY: dup2 onto fixed numbers in the child before exec, where no Rust object owns them.
            check(unsafe { libc::dup2(source, target) })?;
        }
        Ok(())
    };
    // SAFETY: `child` only makes async-signal-safe calls (setsid, ioctl(TIOCSCTTY) and dup2) and
    // allocates nothing.
    unsafe { before_exec(&mut command, child) };
    let mut launcher = command.spawn().expect("spawn");
    let launcher_pid = launcher.id() as i32;
    let status = launcher.wait().unwrap();
    assert!(status.success());
    // SAFETY: closing our copy of the extra file, which nothing else owns.
    unsafe { libc::close(extra_fd) };
    let daemon = LiveDaemon::new(common::report_pid(&common::wait_for_report(&out)));
    // The launcher was the leader of its own session on the pty: the daemon's session differs.
    assert_detached(&daemon, launcher_pid, launcher_pid);
    assert_stdio_null(&daemon);
    // Hang up the terminal: close every end of it.
    drop(pty);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        daemon.alive(),
        "the daemon died with its launching terminal"
    );
}

#[test]
fn a_missing_workdir_fails_the_launch_and_the_body_never_runs() {
    let (_dir, out) = scratch("missing");
    let output = launch(fixture("fx_missing_workdir", &out));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_missing_workdir: cannot change directory to /nonexistent/daemon-runtime-test: \
         No such file or directory (os error 2)\n"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(!out.exists(), "the body ran after a failed setup");
}

fn async_main_forks_before_the_runtime(fixture_name: &str) {
    let (dir, out) = scratch(fixture_name);
    // An inherited fd on a file of our own, which the daemon must not have.
    let marker = dir.join("inherited");
    std::fs::write(&marker, "").unwrap();
    let inherited = common::high_fd(std::fs::File::open(&marker).unwrap());
    let mut command = fixture(fixture_name, &out);
    let child = move || {
        // SAFETY: dup2 onto a fixed number in the child before exec.
        check(unsafe { libc::dup2(inherited, 20) })
    };
    // SAFETY: `child` only makes async-signal-safe calls (dup2) and allocates nothing.
    unsafe { before_exec(&mut command, child) };
    let daemon = start(command, &out);
    // SAFETY: our own copy, owned by nothing else.
    unsafe { libc::close(inherited) };
    assert_detached(&daemon, daemon.launcher.unwrap(), our_sid());
    // The spawned task ran in the daemon (it reported the daemon's pid), on a multi-thread runtime whose
    // workers live in the daemon: the fork came first.
    let threads: usize = daemon.status("Threads")[0].parse().unwrap();
    assert!(
        threads >= 3,
        "{fixture_name}: expected the main thread and 2 workers, found {threads}"
    );
    // 0-2 on /dev/null, the inherited fd gone; the runtime's own fds (epoll, eventfd, its signal socket
    // pair: it depends on tokio's features) were opened in the daemon.
    let fds = daemon.fds();
    assert!(
        fds[..3].iter().all(|(_, target)| target == "/dev/null"),
        "{fixture_name}: {fds:?}"
    );
    let marker = marker.display().to_string();
    assert!(
        fds.iter()
            .all(|(fd, target)| *fd != 20 && *target != marker),
        "{fixture_name}: {fds:?}"
    );
}

/// `#[daemon]` above and below `#[tokio::main]`: the fork comes before the runtime's threads either way.
#[test]
fn async_main_forks_before_the_runtime_in_either_order() {
    // fx_tokio_below: `#[daemon]` above `#[tokio::main]`; fx_tokio_above: below it.
    for name in ["fx_tokio_below", "fx_tokio_above"] {
        async_main_forks_before_the_runtime(name);
    }
}

#[test]
fn a_multi_threaded_process_is_refused() {
    let dir = TempDir::new("threads");
    let mut command = fixture("fx_builder", &dir.join("report"));
    command.arg("--thread");
    let output = launch(command);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_text(&output);
    assert!(
        stderr.starts_with("fx_builder: cannot daemonize a multi-threaded process: 2 threads"),
        "{stderr}"
    );
}

/// Runs the command in a mount namespace of its own without /proc, as in a chroot that has none.
fn without_proc(command: &mut std::process::Command) {
    let child = || {
        // SAFETY: unshare takes a flag and touches no memory of ours.
        check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
        let (none, root) = (std::ptr::null(), c"/".as_ptr());
        let private = libc::MS_REC | libc::MS_PRIVATE;
        // SAFETY: a propagation change reads only the NUL-terminated target; the others may be null.
        check(unsafe { libc::mount(none, root, none, private, std::ptr::null()) })?;
        // SAFETY: umount2 reads the NUL-terminated path.
        check(unsafe { libc::umount2(c"/proc".as_ptr(), libc::MNT_DETACH) })
    };
    // SAFETY: `child` only makes async-signal-safe calls (unshare, mount, umount2) on static strings and
    // allocates nothing.
    unsafe { before_exec(command, child) };
}

#[test]
fn without_proc_a_second_thread_is_still_refused() {
    if !nix::unistd::Uid::effective().is_root() {
        common::skip("unmounting /proc in a mount namespace needs root");
        return;
    }
    // One thread: the daemon starts, and it really ran without /proc.
    let (_dir, out) = scratch("noproc");
    let mut command = fixture("fx_builder", &out);
    without_proc(&mut command);
    let daemon = start(command, &out);
    let its_proc = std::fs::read_dir(daemon.proc("root/proc")).unwrap().count();
    assert_eq!(its_proc, 0, "the daemon's /proc is an empty directory");
    drop(daemon);
    // Two threads: refused, though no /proc counts them (unshare(CLONE_VM) tells).
    let (_dir, out) = scratch("noproc-thread");
    let mut command = fixture("fx_builder", &out);
    command.arg("--thread");
    without_proc(&mut command);
    let output = launch(command);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "fx_builder: cannot daemonize a multi-threaded process: more than one thread is running"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "no daemon ran");
}

#[test]
fn the_launcher_waits_for_manual_readiness() {
    let (_dir, out) = scratch("manual");
    let mut command = fixture("fx_manual", &out);
    command.env("FIXTURE_MODE", "ok");
    let output = launch(command);
    // The body sleeps 300 ms and writes its report before it calls ready(): the report is there as soon
    // as the launcher has exited, or the launcher did not wait.
    let written_before_exit = out.exists();
    assert!(output.status.success(), "{}", stderr_text(&output));
    let daemon = LiveDaemon::new(common::report_pid(&common::wait_for_report(&out)));
    assert!(
        written_before_exit,
        "the launcher exited before the body called ready()"
    );
    assert!(daemon.alive());
}

#[test]
fn keep_fds_in_the_attribute_keeps_exactly_those() {
    let (_dir, out) = scratch("keep-attr");
    let file = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/"))
        .unwrap();
    let target = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
    let source = common::high_fd(file);
    let mut command = fixture("fx_keep", &out);
    let child = move || {
        // SAFETY: dup2 onto fixed numbers in the child before exec.
        unsafe {
            for fd in [4, 5, 7, 9, 12] {
                check(libc::dup2(source, fd))?;
            }
        }
        Ok(())
    };
    // SAFETY: `child` only makes async-signal-safe calls (dup2) and allocates nothing.
    unsafe { before_exec(&mut command, child) };
    let daemon = start(command, &out);
    // SAFETY: our own copy, owned by nothing else.
    unsafe { libc::close(source) };
    let null = "/dev/null".to_string();
    let kept = target.display().to_string();
    assert_eq!(
        daemon.fds(),
        vec![
            (0, null.clone()),
            (1, null.clone()),
            (2, null),
            (5, kept.clone()),
            (9, kept)
        ]
    );
}

#[test]
fn a_daemon_main_called_from_another_main_leaves_owned_fds_open() {
    for mode in ["module", "inner"] {
        let (_dir, out) = scratch("nested");
        let owned = out.with_extension("owned");
        let mut command = fixture("fx_nested", &out);
        command.env("FIXTURE_MODE", mode);
        let daemon = start(command, &out);
        let deadline = Instant::now() + Duration::from_secs(10);
        let expected = format!("still open in {}\n", daemon.pid);
        while std::fs::read_to_string(&owned).unwrap_or_default() != expected {
            assert!(
                Instant::now() < deadline,
                "{mode}: the daemon could not write through the File opened before #[daemon]"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
