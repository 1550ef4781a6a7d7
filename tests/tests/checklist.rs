//! The rest of the daemon(7) checklist, each key observed on real daemons: signals, pid file, log files,
//! privileges, chroot, kept fds, readiness, foreground and systemd.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::is_root;
use common::{
    ChildGuard, LiveDaemon, TempDir, before_exec, check, fixture, launch, scratch, skip, start,
    stderr_text,
};

fn builder(out: &Path, args: &[&str]) -> Command {
    let mut command = fixture("fx_builder", out);
    command.args(args);
    command
}

fn pid_in(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim_end()
        .parse()
        .unwrap()
}

fn mask(values: &[String]) -> u64 {
    u64::from_str_radix(&values[0], 16).unwrap()
}

fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

#[test]
fn inherited_signal_mask_and_ignored_signals_are_reset() {
    let (_dir, out) = scratch("signals");
    let mut command = fixture("fx_default", &out);
    // As nohup and some shells leave them: SIGHUP and SIGINT ignored, SIGUSR1 and SIGTERM blocked.
    let child = || {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initializes the set it points to, valid memory of the right type.
        check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
        for signal in [libc::SIGUSR1, libc::SIGTERM] {
            // SAFETY: `set` was initialized by sigemptyset; sigaddset only writes into it.
            check(unsafe { libc::sigaddset(set.as_mut_ptr(), signal) })?;
        }
        // SAFETY: `set` is initialized; a null old set asks for nothing back. sigprocmask is
        // async-signal-safe.
        check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) })?;
        for signal in [libc::SIGHUP, libc::SIGINT] {
            // SAFETY: SIG_IGN runs no code of ours; signal(2) is async-signal-safe.
            if unsafe { libc::signal(signal, libc::SIG_IGN) } == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: `child` only makes async-signal-safe calls (sigemptyset, sigaddset, sigprocmask and
    // signal) and allocates nothing.
    unsafe { before_exec(&mut command, child) };
    let daemon = start(command, &out);
    assert_eq!(
        mask(&daemon.status("SigBlk")),
        0,
        "the signal mask is empty"
    );
    assert_eq!(
        mask(&daemon.status("SigIgn")),
        bit(libc::SIGPIPE),
        "only SIGPIPE stays ignored (Rust's choice)"
    );
    let caught = mask(&daemon.status("SigCgt"));
    assert_eq!(
        caught & bit(libc::SIGSEGV),
        bit(libc::SIGSEGV),
        "Rust's own SIGSEGV handler is kept"
    );
}

/// glibc refuses sigaction(3) on the real-time signals it keeps for itself (32 and 33), so an ignored
/// disposition inherited on one of them can only be reset through the raw `rt_sigaction` system call. The
/// fixture ignores both that way (and checks the kernel shows it) before it daemonizes.
#[test]
fn signals_reserved_by_the_c_library_are_reset_too() {
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        skip("the raw rt_sigaction path exists only on Linux x86_64 and aarch64");
        return;
    }
    let (_dir, out) = scratch("reserved-signals");
    let command = fixture("fx_reserved_signals", &out);
    let daemon = start(command, &out);
    let ignored = mask(&daemon.status("SigIgn"));
    assert_eq!(
        ignored & (bit(32) | bit(33)),
        0,
        "signals 32 and 33 are back at SIG_DFL (SigIgn {ignored:#x})"
    );
    assert_eq!(ignored, bit(libc::SIGPIPE), "only SIGPIPE stays ignored");
}

#[test]
fn concurrent_launches_on_one_pid_file_start_exactly_one_daemon() {
    let (dir, out) = scratch("race");
    let pid_file = dir.join("app.pid");
    let launchers: Vec<_> = (0..16)
        .map(|_| {
            builder(&out, &["--pid-file", pid_file.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<_> = launchers
        .into_iter()
        .map(|l| l.wait_with_output().unwrap())
        .collect();
    let report = common::wait_for_report(&out);
    let daemon = LiveDaemon::new(common::report_pid(&report));
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        outputs.iter().map(stderr_text).collect::<Vec<_>>()
    );
    let expected = format!(
        "fx_builder: already running (pid {}): {}.lock is locked by the running daemon\n",
        daemon.pid,
        pid_file.display()
    );
    for output in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(stderr_text(output), expected);
    }
    assert_eq!(pid_in(&pid_file), daemon.pid);
    assert!(daemon.alive());
}

#[test]
fn pid_file_is_written_before_the_launcher_exits_and_removed_on_return() {
    let (dir, out) = scratch("pidfile");
    let pid_file = dir.join("app.pid");
    let mut command = builder(&out, &["--pid-file", pid_file.to_str().unwrap()]);
    command.env("FIXTURE_LIFE", "3"); // the body returns normally after 3 s
    let output = launch(command);
    // Read at once: the pid file must be there when the launcher exits (systemd's PIDFile= relies on it).
    let content = std::fs::read_to_string(&pid_file);
    let daemon = LiveDaemon::new(common::report_pid(&common::wait_for_report(&out)));
    assert!(output.status.success(), "{}", stderr_text(&output));
    let content = content.expect("the pid file exists when the launcher exits");
    let pid: i32 = content.trim_end().parse().unwrap();
    assert_eq!(pid, daemon.pid);
    assert_eq!(content, format!("{pid}\n"));
    assert_eq!(
        std::fs::metadata(&pid_file).unwrap().permissions().mode() & 0o777,
        0o644,
        "0o644 under umask 0"
    );
    assert!(
        common::gone_within(daemon.pid, Duration::from_secs(10)),
        "the body did not return"
    );
    assert!(
        !pid_file.exists(),
        "the pid file was not removed when main returned"
    );
}

#[test]
fn a_stale_pid_file_is_taken_over() {
    let (dir, out) = scratch("stale");
    let pid_file = dir.join("app.pid");
    let first = start(
        builder(&out, &["--pid-file", pid_file.to_str().unwrap()]),
        &out,
    );
    let first_pid = first.pid;
    drop(first); // SIGKILL: no cleanup, the file stays with a dead pid
    assert_eq!(pid_in(&pid_file), first_pid);
    std::fs::remove_file(&out).unwrap();
    let second = start(
        builder(&out, &["--pid-file", pid_file.to_str().unwrap()]),
        &out,
    );
    assert_ne!(second.pid, first_pid);
    assert_eq!(pid_in(&pid_file), second.pid);
}

#[test]
fn a_pid_file_that_is_a_symlink_is_refused() {
    let (dir, out) = scratch("symlink");
    let target = dir.join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    let pid_file = dir.join("app.pid");
    std::os::unix::fs::symlink(&target, &pid_file).unwrap();
    let output = launch(builder(&out, &["--pid-file", pid_file.to_str().unwrap()]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        format!(
            "fx_builder: cannot use pid file {}: it is a symbolic link, which a pid file must not be: \
             Too many levels of symbolic links (os error 40)\n",
            pid_file.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(!out.exists(), "the body ran");
}

#[test]
fn start_stop_daemon_starts_checks_and_stops_it() {
    let Ok(ssd) = which("start-stop-daemon") else {
        panic!("start-stop-daemon is missing: .ci/run installs it (Debian package dpkg)");
    };
    let (dir, out) = scratch("ssd");
    let pid_file = dir.join("app.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let exe = common::exe("fx_builder");
    let run = |args: &[&str]| {
        Command::new(&ssd)
            .args(args)
            .env("FIXTURE_OUT", &out)
            .env("FIXTURE_LIFE", "30")
            .env_remove("NOTIFY_SOCKET")
            .output()
            .expect("start-stop-daemon")
    };
    let start = [
        "--start",
        "--pidfile",
        pid_arg,
        "--exec",
        exe,
        "--",
        "--pid-file",
        pid_arg,
    ];
    let started = run(&start);
    assert!(started.status.success(), "{started:?}");
    let daemon = LiveDaemon::new(pid_in(&pid_file));
    assert!(daemon.alive());
    let status = run(&["--status", "--pidfile", pid_arg, "--exec", exe]);
    assert_eq!(status.status.code(), Some(0), "--status: running");
    let again = run(&start);
    assert_eq!(
        again.status.code(),
        Some(1),
        "--start on a running daemon does nothing: {again:?}"
    );
    let stopped = run(&[
        "--stop",
        "--pidfile",
        pid_arg,
        "--retry",
        "TERM/5",
        "--exec",
        exe,
    ]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(!daemon.alive());
    let status = run(&["--status", "--pidfile", pid_arg, "--exec", exe]);
    assert_ne!(status.status.code(), Some(0), "--status: not running");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn stdout_and_stderr_files_receive_output_and_panics_across_restarts() {
    let (dir, out) = scratch("logs");
    let (log_out, log_err) = (dir.join("app.out"), dir.join("app.err"));
    let args = [
        "--stdout",
        log_out.to_str().unwrap(),
        "--stderr",
        log_err.to_str().unwrap(),
        "--then",
        "print",
    ];
    let first = start(builder(&out, &args), &out);
    let first_pid = first.pid;
    drop(first);
    std::fs::remove_file(&out).unwrap();
    let second = start(builder(&out, &args), &out);
    let stdout = std::fs::read_to_string(&log_out).unwrap();
    let stderr = std::fs::read_to_string(&log_err).unwrap();
    assert_eq!(
        stdout,
        format!(
            "stdout line from {first_pid}\nstdout line from {}\n",
            second.pid
        )
    );
    assert_eq!(
        stderr,
        format!(
            "stderr line from {first_pid}\nstderr line from {}\n",
            second.pid
        )
    );
    assert_eq!(
        std::fs::metadata(&log_out).unwrap().permissions().mode() & 0o777,
        0o640
    );
    drop(second);

    std::fs::remove_file(&out).unwrap();
    let args = ["--stderr", log_err.to_str().unwrap(), "--then", "panic"];
    let output = launch(builder(&out, &args));
    assert!(output.status.success());
    let pid = common::report_pid(&common::wait_for_report(&out));
    let _guard = LiveDaemon::new(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    let needle = format!("fixture panic in {pid}");
    while !std::fs::read_to_string(&log_err).unwrap().contains(&needle) {
        assert!(
            Instant::now() < deadline,
            "the panic message did not reach the stderr file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_log_file_that_cannot_be_opened_fails_the_launch() {
    let (_dir, out) = scratch("badlog");
    let output = launch(builder(
        &out,
        &["--stdout", "/nonexistent/daemon-runtime/app.out"],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_builder: cannot open stdout file /nonexistent/daemon-runtime/app.out: \
         No such file or directory (os error 2)\n"
    );
}

#[test]
fn privileges_are_dropped_for_good() {
    if !is_root() {
        skip("dropping privileges needs root (CI runs as root)");
        return;
    }
    let dir = TempDir::new("privileges");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.join("report");
    let daemon = start(
        builder(&out, &["--user", "nobody", "--then", "try-root"]),
        &out,
    );
    let report = std::fs::read_to_string(&out).unwrap();
    assert_eq!(report, format!("{} regained=false\n", daemon.pid));
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let uid = nobody.uid.to_string();
    let gid = nobody.gid.to_string();
    assert_eq!(daemon.status("Uid"), vec![uid.clone(); 4]);
    assert_eq!(daemon.status("Gid"), vec![gid.clone(); 4]);
    assert!(
        daemon.status("Groups").iter().all(|g| *g != "0"),
        "root's groups are gone"
    );
    drop(daemon);

    std::fs::remove_file(&out).unwrap();
    let daemon = start(
        builder(&out, &["--user", "nobody", "--group", "nogroup"]),
        &out,
    );
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .unwrap()
        .unwrap()
        .gid
        .to_string();
    assert_eq!(daemon.status("Gid"), vec![nogroup.clone(); 4]);
    assert_eq!(daemon.status("Uid")[0], uid);
}

#[test]
fn an_unknown_user_or_group_fails_the_launch() {
    let (_dir, out) = scratch("unknown");
    let output = launch(builder(&out, &["--user", "no-such-user-here"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_builder: cannot look up user no-such-user-here: no such user\n"
    );
    let output = launch(builder(&out, &["--group", "no-such-group-here"]));
    assert_eq!(
        stderr_text(&output),
        "fx_builder: cannot look up group no-such-group-here: no such group\n"
    );
    assert!(!out.exists());
}

#[test]
fn chroot_confines_the_daemon() {
    if !is_root() {
        skip("chroot needs root (CI runs as root)");
        return;
    }
    let dir = TempDir::new("chroot");
    let jail = dir.join("jail");
    std::fs::create_dir_all(jail.join("data")).unwrap();
    std::fs::create_dir_all(jail.join("etc")).unwrap();
    // A group database inside the jail that would hand nobody the disk group: it must not be read.
    std::fs::write(
        jail.join("etc/group"),
        "disk:x:6:nobody\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap(); // the same relative path outside the jail
    let pid_file = dir.join("app.pid");
    let command = builder(
        &dir.join("report"),
        &[
            "--chroot",
            jail.to_str().unwrap(),
            "--workdir",
            "/data",
            "--user",
            "nobody",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
    );
    // The workdir is entered inside the jail: /data there, not the directory of that name outside.
    let output = launch(command);
    assert!(output.status.success(), "{}", stderr_text(&output));
    // The report file is outside the jail: the pid file, opened before the chroot, names the daemon.
    let daemon = LiveDaemon::new(pid_in(&pid_file));
    assert_eq!(std::fs::read_link(daemon.proc("root")).unwrap(), jail);
    assert_eq!(
        std::fs::read_link(daemon.proc("cwd")).unwrap(),
        jail.join("data")
    );
    assert!(
        !daemon.status("Groups").contains(&"6".to_string()),
        "groups came from the jail's /etc/group"
    );
}

#[test]
fn kept_fds_are_inherited_and_all_others_closed() {
    let (dir, out) = scratch("keep");
    let kept_file = dir.join("kept");
    std::fs::write(&kept_file, "").unwrap();
    let kept = common::high_fd(std::fs::File::open(&kept_file).unwrap());
    let mut command = builder(&out, &["--keep-fd", "7"]);
    let child = move || {
        for fd in [7, 9] {
            // SAFETY: dup2 onto a fixed number in the child before exec, where nothing owns that number.
            check(unsafe { libc::dup2(kept, fd) })?;
        }
        Ok(())
    };
    // SAFETY: `child` only makes async-signal-safe calls (dup2) and allocates nothing.
    unsafe { before_exec(&mut command, child) };
    let daemon = start(command, &out);
    // SAFETY: our own copy, owned by nothing else.
    unsafe { libc::close(kept) };
    let fds = daemon.fds();
    let null = "/dev/null".to_string();
    assert_eq!(
        fds,
        vec![
            (0, null.clone()),
            (1, null.clone()),
            (2, null),
            (7, kept_file.display().to_string())
        ]
    );
}

#[test]
fn manual_readiness_reports_errors_panics_and_timeouts() {
    let (_dir, out) = scratch("not-ready");
    let run = |mode: &str| {
        let mut command = fixture("fx_manual", &out);
        command.env("FIXTURE_MODE", mode);
        launch(command)
    };
    let output = run("err");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_manual: the daemon exited before it was ready: main returned an error: \
         cannot bind 127.0.0.1:1: address in use\n"
    );
    // Shown with `Display`, as the privileged code's errors are, not `Debug` (`Os { code: 2, ... }`).
    let output = run("err-io");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_manual: the daemon exited before it was ready: main returned an error: \
         No such file or directory (os error 2)\n"
    );
    let output = run("panic");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_text(&output);
    assert!(
        stderr.starts_with("fx_manual: the daemon exited before it was ready: main panicked at ")
            && stderr.ends_with(": boom before ready\n"),
        "{stderr}"
    );
    let began = Instant::now();
    let output = run("hang");
    assert!(began.elapsed() >= Duration::from_secs(2));
    let pid = common::report_pid(&common::wait_for_report(&out));
    let _guard = LiveDaemon::new(pid);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_manual: the daemon did not report ready within 2s: it was stopped (SIGTERM)\n"
    );
    assert!(
        common::gone_within(pid, Duration::from_secs(5)),
        "the daemon that never became ready was not stopped"
    );
    std::fs::remove_file(&out).unwrap();
    let output = run("hang-hard");
    let pid = common::report_pid(&common::wait_for_report(&out));
    let _guard = LiveDaemon::new(pid);
    assert_eq!(
        stderr_text(&output),
        "fx_manual: the daemon did not report ready within 2s: it ignored SIGTERM and was killed (SIGKILL)\n"
    );
    assert!(
        common::gone_within(pid, Duration::from_secs(2)),
        "the daemon that ignored SIGTERM is still running"
    );
}

#[test]
fn a_bad_daemon_foreground_value_is_a_launch_error() {
    let (_dir, out) = scratch("fg-bad");
    let mut command = fixture("fx_default", &out);
    command.env("DAEMON_FOREGROUND", "maybe");
    let output = launch(command);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_default: invalid daemon configuration: DAEMON_FOREGROUND=maybe is neither 1, true, yes, on (foreground) nor 0, false, no, off (fork)\n"
    );
    assert!(!out.exists());
}

/// Runs a fixture in foreground mode and returns (child, its report).
fn foreground(command: &mut Command, out: &Path) -> (ChildGuard, String) {
    let child = ChildGuard(command.stdout(Stdio::piped()).spawn().expect("spawn"));
    let report = common::wait_for_report(out);
    (child, report)
}

#[test]
fn under_systemd_notify_it_stays_in_the_foreground_and_sends_ready() {
    for abstract_name in [false, true] {
        let dir = TempDir::new("notify");
        let out = dir.join("report");
        let (socket, address) = if abstract_name {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("daemon-runtime-test-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
        } else {
            let path = dir.join("notify.sock");
            (
                UnixDatagram::bind(&path).unwrap(),
                path.display().to_string(),
            )
        };
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut command = fixture("fx_default", &out);
        command.env("NOTIFY_SOCKET", &address);
        let (child, report) = foreground(&mut command, &out);
        let pid = child.0.id() as i32;
        let daemon = LiveDaemon::new(pid);
        let mut message = [0u8; 64];
        let n = socket
            .recv(&mut message)
            .expect("READY=1 on the notify socket");
        assert_eq!(&message[..n], b"READY=1");
        assert_eq!(
            common::report_pid(&report),
            pid,
            "no fork under Type=notify"
        );
        let fds = daemon.fds();
        assert!(
            fds[1].1.starts_with("pipe:"),
            "stdout kept for the journal: {fds:?}"
        );
        drop((daemon, child));
    }
}

#[test]
fn daemon_foreground_keeps_the_process_attached() {
    let (_dir, out) = scratch("fg");
    let mut command = fixture("fx_configured", &out);
    command.env("DAEMON_FOREGROUND", "1");
    let (child, report) = foreground(&mut command, &out);
    let daemon = LiveDaemon::new(child.0.id() as i32);
    assert_eq!(
        common::report_pid(&report),
        daemon.pid,
        "no fork with DAEMON_FOREGROUND=1"
    );
    assert_eq!(
        daemon.status("Umask"),
        ["0027"],
        "the other steps still apply"
    );
    assert_eq!(
        std::fs::read_link(daemon.proc("cwd")).unwrap(),
        Path::new("/tmp")
    );
    assert!(daemon.fds()[1].1.starts_with("pipe:"));
    drop((daemon, child));
}

#[test]
fn as_pid_1_it_does_not_fork() {
    if !is_root() || which("unshare").is_err() {
        skip("needs root and unshare(1) for a new pid namespace");
        return;
    }
    let (_dir, out) = scratch("pid1");
    let mut command = Command::new(which("unshare").unwrap());
    command
        .args(["--pid", "--fork", "--kill-child", common::exe("fx_default")])
        .env("FIXTURE_OUT", &out)
        .env("FIXTURE_LIFE", "30")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DAEMON_FOREGROUND")
        .stdin(Stdio::null());
    let (child, report) = foreground(&mut command, &out);
    // No daemonizing fork: the runtime stays PID 1 as a minimal init, and the program serves as its
    // first child, PID 2, in the same namespace (see tests/tests/signals.rs for why and what it does).
    assert_eq!(
        report, "2\n",
        "as PID 1 the program serves in place, under the runtime's init"
    );
    drop(child);
}

#[test]
fn the_builder_keeps_fds_the_program_owns() {
    let (dir, out) = scratch("owned");
    let owned = dir.join("owned.log");
    std::fs::write(&owned, "").unwrap();
    let daemon = start(
        builder(&out, &["--own-file", owned.to_str().unwrap()]),
        &out,
    );
    assert_eq!(
        std::fs::read_to_string(&owned).unwrap(),
        format!("owned file still open in {}\n", daemon.pid)
    );
}

#[test]
fn a_launcher_started_with_stdio_closed_still_gets_the_report() {
    let (_dir, out) = scratch("closed-stdio");
    let mut command = builder(&out, &["--close-stdio"]);
    command.stdout(Stdio::null());
    let daemon = start(command, &out);
    let null = "/dev/null".to_string();
    assert_eq!(
        daemon.fds(),
        vec![(0, null.clone()), (1, null.clone()), (2, null)]
    );
}

#[test]
fn a_ready_timeout_too_large_to_represent_waits_without_a_deadline() {
    let (_dir, out) = scratch("huge-timeout");
    let daemon = start(
        builder(&out, &["--timeout-secs", &u64::MAX.to_string()]),
        &out,
    );
    assert!(daemon.alive());
}

#[test]
fn a_panic_on_another_thread_before_ready_does_not_fail_the_start() {
    let (_dir, out) = scratch("thread-panic");
    let mut command = fixture("fx_manual", &out);
    command.env("FIXTURE_MODE", "thread-panic");
    let daemon = start(command, &out);
    assert!(daemon.alive());
}

#[test]
fn daemon_foreground_0_forks_even_under_notify_socket() {
    let (dir, out) = scratch("fg0");
    let socket = UnixDatagram::bind(dir.join("notify.sock")).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut command = fixture("fx_default", &out);
    command
        .env("NOTIFY_SOCKET", dir.join("notify.sock"))
        .env("DAEMON_FOREGROUND", "0");
    let daemon = start(command, &out);
    assert_ne!(
        Some(daemon.pid),
        daemon.launcher,
        "DAEMON_FOREGROUND=0 forks"
    );
    assert_ne!(
        daemon.stat()[3],
        daemon.pid.to_string(),
        "in a new session, not its leader"
    );
}
