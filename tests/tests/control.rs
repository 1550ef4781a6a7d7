//! Control commands on live daemons: `fx_control status|stop|restart|reload` acting on a daemon started by
//! `fx_control start`, observed from outside through /proc.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::control::{Setup, code, result, stdout_text};
use common::{LiveDaemon, exe, gone_within, is_alive, launch, scratch, skip, start, stderr_text};
use common::{NOBODY, is_root};

#[test]
fn status_stop_and_reload_with_their_exit_codes() {
    let setup = Setup::new("ctl-codes");
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
    assert_eq!(
        result(&setup.run(&["reload"])),
        (7, "fx_control: not running".into())
    );
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, "not running (already stopped)".into())
    );

    let daemon = setup.start(&["start", "--flag", "x"]);
    let report = std::fs::read_to_string(&setup.out).unwrap();
    assert!(
        report.ends_with(" args=--flag|x\n"),
        "the action word is consumed, the rest is the program's: {report}"
    );
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid))
    );
    let json = setup.run(&["status", "--json"]);
    assert_eq!(code(&json), 0);
    let json = stdout_text(&json);
    assert!(
        json.starts_with(&format!(
            "{{\"action\":\"status\",\"code\":0,\"running\":true,\"pid\":{},\"uptime_secs\":",
            daemon.pid
        )) && json.contains("\"user\":\"root\"") | !nix::unistd::geteuid().is_root(),
        "{json}"
    );

    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(
        (code, message),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!daemon.alive(), "stop returns once the daemon is gone");
    assert!(!setup.pid_file.exists(), "the daemon removed its pid file");
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, "not running (already stopped)".into())
    );
}

/// A daemon that dies by a signal cannot remove its files. After a `stop`, which saw the lock released,
/// they are gone (start-stop-daemon's `--remove-pidfile`): `status` says 3. Killed any other way, they
/// stay, and `status` says 1 ("dead, and the pid file exists"), until a `stop` or the next start.
#[test]
fn a_daemon_killed_by_a_signal_is_dead_until_stop_cleans_up() {
    let setup = Setup::new("ctl-dead").with("FX_TERM", "default");
    let daemon = setup.start(&[]);
    assert_eq!(code(&setup.run(&["stop"])), 0);
    assert!(!daemon.alive());
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));

    let daemon = setup.start(&[]);
    common::kill_and_wait(daemon.pid);
    let (code, message) = result(&setup.run(&["status"]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("not running, but pid file"), "{message}");
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, "not running (already stopped)".into())
    );
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
}

#[test]
fn a_first_argument_that_is_not_an_action_is_left_to_the_program() {
    let setup = Setup::new("ctl-other");
    let _daemon = setup.start(&["--verbose", "stop"]);
    let report = std::fs::read_to_string(&setup.out).unwrap();
    assert!(report.ends_with(" args=--verbose|stop\n"), "{report}");
}

#[test]
fn stop_escalates_to_sigkill_on_schedule() {
    let setup = Setup::new("ctl-kill")
        .with("FX_TERM", "ignore")
        .with("FX_RETRY", "TERM/1/KILL/5");
    let daemon = setup.start(&[]);
    let begun = Instant::now();
    let (code, message) = result(&setup.run(&["stop"]));
    let took = begun.elapsed();
    assert_eq!(
        (code, message),
        (0, format!("stopped (pid {}, SIGKILL)", daemon.pid))
    );
    assert!(!daemon.alive());
    assert!(
        took >= Duration::from_secs(1),
        "SIGKILL came before the 1 s the schedule gives SIGTERM: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn stop_fails_when_the_schedule_runs_out() {
    let setup = Setup::new("ctl-stubborn")
        .with("FX_TERM", "ignore")
        .with("FX_RETRY", "TERM/0.2/TERM/0.2");
    let daemon = setup.start(&[]);
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains(&format!("pid {} is still running", daemon.pid)),
        "{message}"
    );
    assert!(daemon.alive());
    let (code, message) = result(&setup.run(&["status"]));
    assert_eq!(code, 0, "{message}");
}

#[test]
fn an_invalid_schedule_is_refused() {
    let setup = Setup::new("ctl-badretry").with("FX_RETRY", "TERM/soon");
    // Checked with the rest of the configuration, before any action.
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("invalid stop_retry"), "{message}");
    let output = setup.run(&["start"]);
    assert_eq!(common::stderr_text(&output).lines().count(), 1);
    assert!(stderr_text(&output).contains("invalid stop_retry \"TERM/soon\""));
    assert!(!setup.pid_file.exists());
}

/// A pid file left behind that names a live process unrelated to the daemon (this test's own process):
/// nothing is signalled (a SIGTERM or SIGHUP would end this test process), status says 1. With the lock
/// file a crashed daemon leaves (its record still in it), `stop` takes the lock, which proves nobody
/// holds it, and removes both files: status then says 3.
#[test]
fn a_stale_pid_file_naming_a_live_process_is_never_signalled() {
    let setup = Setup::new("ctl-stale");
    std::fs::write(&setup.pid_file, format!("{}\n", std::process::id())).unwrap();
    let stale = |setup: &Setup| {
        let (code, message) = result(&setup.run(&["status"]));
        assert_eq!(code, 1, "{message}");
        assert_eq!(
            result(&setup.run(&["reload"])),
            (7, "fx_control: not running".into())
        );
        assert_eq!(
            result(&setup.run(&["stop"])),
            (0, "not running (already stopped)".into())
        );
    };
    stale(&setup);
    assert_eq!(
        std::fs::read_to_string(&setup.pid_file).unwrap(),
        format!("{}\n", std::process::id()),
        "without a lock file to take, the pid file is left as it was"
    );
    std::fs::write(
        setup.lock_file(),
        "daemon-runtime control 2\npid 1\nend 00000000\n",
    )
    .unwrap();
    std::fs::set_permissions(setup.lock_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    stale(&setup);
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
}

/// The kernel names a live process as the lock's holder, but that process no longer has the lock file open
/// (the lock is held through a descriptor another process shares): what a recycled pid looks like. Nothing
/// is signalled, and status cannot tell.
#[test]
fn a_lock_holder_without_the_lock_file_open_is_never_signalled() {
    let setup = Setup::new("ctl-shared");
    std::fs::write(&setup.pid_file, "1\n").unwrap();
    std::fs::write(setup.lock_file(), "").unwrap();
    std::fs::set_permissions(setup.lock_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let report = setup.dir.join("holders");
    let child = Command::new(exe("fx_shared_lock"))
        .arg(setup.lock_file())
        .arg(&report)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _parent = common::ChildGuard(child);
    let pids = common::wait_for_report(&report);
    let pids: Vec<i32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let _taker = LiveDaemon::new(pids[1]);
    let (code, message) = result(&setup.run(&["status"]));
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("none of its descriptors holds the lock"),
        "{message}"
    );
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    let (code, _) = result(&setup.run(&["reload"]));
    assert_eq!(code, 1);
    assert!(
        is_alive(pids[0]) && is_alive(pids[1]),
        "nothing was signalled"
    );
}

/// A lock file another user could have planted or could open is refused. The pid file is not used by the
/// actions (review F7): whatever it has become (world-writable, a symlink, another user's), status and
/// stop still act on the lock's holder, and status looks at the pid file only to tell 1 from 3.
#[test]
fn lock_files_others_could_plant_are_refused_and_pid_file_oddities_do_not_matter() {
    let setup = Setup::new("ctl-writable").with("FX_TERM", "default");
    let daemon = setup.start(&[]);

    // A symbolic link in place of the lock file.
    let lock = setup.lock_file();
    let moved = setup.dir.join("moved.lock");
    std::fs::rename(&lock, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &lock).unwrap();
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    assert!(daemon.alive(), "nothing was signalled");
    std::fs::remove_file(&lock).unwrap();
    std::fs::rename(&moved, &lock).unwrap();
    // A lock file open to others.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o622)).unwrap();
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("group- or world-writable"), "{message}");
    assert!(daemon.alive(), "nothing was signalled");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();

    if nix::unistd::geteuid().is_root() {
        // A lock file given to a user the daemon is not configured to run as.
        std::os::unix::fs::chown(&lock, Some(NOBODY), None).unwrap();
        let (code, message) = result(&setup.run(&["stop"]));
        assert_eq!(code, 1, "{message}");
        assert!(
            message.contains("lock file") && message.contains("owned by uid 65534"),
            "{message}"
        );
        assert!(daemon.alive(), "nothing was signalled");
        std::os::unix::fs::chown(&lock, Some(0), None).unwrap();
        // A pid file given to another user: not used, so no matter.
        std::os::unix::fs::chown(&setup.pid_file, Some(NOBODY), None).unwrap();
        assert_eq!(
            result(&setup.run(&["status"])),
            (0, format!("running (pid {})", daemon.pid))
        );
    }

    // The pid file world-writable, then a symbolic link: status and stop act on the lock's holder.
    std::fs::set_permissions(&setup.pid_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid))
    );
    std::fs::remove_file(&setup.pid_file).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &setup.pid_file).unwrap();
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid))
    );
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    // Killed by the signal, the daemon left its files: the pid file is there (and would be refused).
    let (code, message) = result(&setup.run(&["status"]));
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains("exists") && message.contains("symbolic link"),
        "{message}"
    );
}

/// A daemon that dropped to `nobody`: root and `nobody` itself may ask its status, reload and stop it.
/// Only root reads its answers (the lock file is root's, so that no other process of `nobody`'s can
/// forge them: issue 18.4); `nobody`'s reload says it only signalled. The daemon cannot remove its files
/// in a directory of root's: it exits cleanly leaving an empty lock file, which status tells from a
/// crash.
#[test]
fn the_daemons_own_user_may_control_it() {
    if !nix::unistd::geteuid().is_root() {
        return skip("a daemon running as nobody needs root to start");
    }
    let mut setup = Setup::new("ctl-own-user")
        .with("FX_USER", "nobody")
        .with("FX_HUP", "ack-ok");
    // The daemon reports as nobody: into a directory of nobody's.
    let reports = setup.dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::os::unix::fs::chown(&reports, Some(NOBODY), Some(NOBODY)).unwrap();
    setup.out = reports.join("report");
    let daemon = setup.start(&[]);
    assert_eq!(daemon.status("Uid")[1], NOBODY.to_string());
    let as_nobody = |action: &str| {
        let mut command = setup.command(&[action]);
        command.uid(NOBODY).gid(NOBODY);
        launch(command)
    };
    assert_eq!(
        result(&as_nobody("status")),
        (0, format!("running (pid {})", daemon.pid))
    );
    assert_eq!(
        result(&setup.run(&["reload"])),
        (0, format!("reloaded (pid {})", daemon.pid))
    );
    let (status, message) = result(&as_nobody("reload"));
    assert_eq!(status, 0, "{message}");
    assert!(
        message.starts_with(&format!("signalled pid {} with SIGHUP", daemon.pid))
            && message.contains("Permission denied"),
        "{message}"
    );
    assert_eq!(
        result(&as_nobody("stop")),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!daemon.alive());
    assert!(
        setup.pid_file.exists(),
        "nobody may not remove root's files"
    );
    let (status, message) = result(&as_nobody("status"));
    assert_eq!(status, 3, "{message}");
    assert!(message.contains("it exited cleanly"), "{message}");
    assert_eq!(code(&setup.run(&["status"])), 3);
}

/// Two `stop`s at once: both succeed, the daemon is gone.
#[test]
fn concurrent_stops_both_succeed() {
    let setup = Setup::new("ctl-concurrent");
    let daemon = setup.start(&[]);
    let spawn = || {
        setup
            .command(&["stop"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    }
    assert!(!daemon.alive());
    assert_eq!(code(&setup.run(&["status"])), 3);
}

/// `flock -MODE` on `file` (the lock held by the flock process alone: `-o` closes it in the command),
/// in a process group of its own that the guard kills whole; returns once the lock is held.
fn flock_holder(file: &Path, mode: &str, seconds: &str) -> FlockHolder {
    let mut command = Command::new("flock");
    command.args([mode, "-n", "-o"]).arg(file).args([
        "sh",
        "-c",
        &format!("echo locked; exec sleep {seconds}"),
    ]);
    lock_holder(command)
}

/// Runs `command`, which prints `locked` once it holds the lock, in a process group of its own that the
/// guard kills whole; returns once the lock is held.
fn lock_holder(mut command: Command) -> FlockHolder {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("lock holder");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    );
    let holder = FlockHolder(child);
    assert_eq!(line, "locked\n");
    holder
}

/// A `flock` holder and its command: killed, group and all, when dropped.
struct FlockHolder(std::process::Child);

impl FlockHolder {
    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap()
    }
}

impl Drop for FlockHolder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

/// Another control action holding the lock for a moment (as `status` and `stop`'s clean-up do, with a
/// shared lock) is neither a daemon nor in the way: played by a root `flock -s` on the lock a killed
/// daemon left. `status` and `stop` answer as without it, and it is never signalled; the files stay while
/// it holds the lock (one removal at a time), and the next `stop` removes them. (Before, the probe took
/// the lock exclusively: it found it held, the table named no exclusive holder, and `status` and `stop`
/// failed with "locked, but /proc/locks names no holder"; two `stop`s at once failed that way.)
#[test]
fn another_control_action_holding_the_lock_is_no_daemon() {
    let setup = Setup::new("ctl-shared");
    let daemon = setup.start(&[]);
    common::kill_and_wait(daemon.pid);
    let holder = flock_holder(&setup.lock_file(), "-s", "30");
    let (status, message) = result(&setup.run(&["status"]));
    assert_eq!(status, 1, "{message}");
    assert!(message.contains("not running, but pid file"), "{message}");
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, "not running (already stopped)".into())
    );
    assert!(is_alive(holder.pid()), "the holder was signalled");
    files_stay_until_it_lets_go(&setup, holder);
}

/// The files a killed daemon left stay while `holder` holds the lock (one removal at a time); once it lets
/// go, the next `stop` removes them.
fn files_stay_until_it_lets_go(setup: &Setup, holder: FlockHolder) {
    assert!(setup.pid_file.exists() && setup.lock_file().exists());
    drop(holder);
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, "not running (already stopped)".into())
    );
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
}

/// A root process holding the lock exclusively through a read-only descriptor (a launcher's or another
/// action's clean-up; here `flock -x`, which opens the file read-only) is no daemon, even for a daemon
/// without `user` (whose holder runs as root, the lock file's owner): it is refused, never signalled.
/// (Before, `stop` took it for the daemon and sent it SIGTERM.)
#[test]
fn a_root_process_holding_the_lock_read_only_is_never_signalled() {
    let setup = Setup::new("ctl-readonly");
    let daemon = setup.start(&[]);
    common::kill_and_wait(daemon.pid);
    let holder = flock_holder(&setup.lock_file(), "-x", "30");
    let (status, message) = result(&setup.run(&["status"]));
    assert_eq!(status, 4, "{message}");
    assert!(
        message.contains(&format!("refusing to act on pid {}", holder.pid()))
            && message.contains("read-only descriptor"),
        "{message}"
    );
    let (stop, message) = result(&setup.run(&["stop"]));
    assert_ne!(stop, 0, "{message}");
    assert!(
        is_alive(holder.pid()),
        "the holder was signalled: {message}"
    );
    files_stay_until_it_lets_go(&setup, holder);
}

/// A read-only holder that lets go soon (another action's clean-up, descheduled for a moment) is waited
/// out: `status` answers for the dead daemon instead of refusing.
#[test]
fn a_passing_clean_up_is_waited_out() {
    let setup = Setup::new("ctl-passing");
    let daemon = setup.start(&[]);
    common::kill_and_wait(daemon.pid);
    let _holder = flock_holder(&setup.lock_file(), "-x", "0.3");
    let (status, message) = result(&setup.run(&["status"]));
    assert_eq!(status, 1, "{message}");
    assert!(message.contains("not running, but pid file"), "{message}");
}

/// The files are read again while the lock settles: an upgrade's old daemon, which the files named when
/// `status` read them, exits, and `upgrade` rewrites the pid file for the new daemon, which holds the lock
/// through the open file it was handed; `/proc/locks` names the lock's first holder, long gone (an flock
/// keeps its first holder's pid). Played by a shell that opens the lock file read-write, has `flock(1)`
/// lock it and exit, and holds it on; the pid file names the dead daemon until 100 ms after `status`
/// started. (Before, `status` kept the names it read first and said "cannot tell" beside an upgrade.)
#[test]
fn the_files_are_read_again_while_the_lock_settles() {
    let setup = Setup::new("ctl-reread");
    let daemon = setup.start(&[]);
    common::kill_and_wait(daemon.pid);
    let mut holder = Command::new("sh");
    holder
        .args([
            "-c",
            "exec 9<>\"$0\"; flock -x -n 9 || exit 1; echo locked; exec sleep 30",
        ])
        .arg(setup.lock_file());
    let holder = lock_holder(holder);
    let status = setup
        .command(&["status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("status");
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&setup.pid_file, format!("{}\n", holder.pid())).expect("pid file");
    let output = status.wait_with_output().expect("status");
    assert_eq!(
        result(&output),
        (0, format!("running (pid {})", holder.pid()))
    );
}

/// A user who can only read the files asks about a root daemon; and may not stop it.
#[test]
fn status_as_nobody_on_a_root_daemon() {
    if !nix::unistd::geteuid().is_root() {
        return skip("status as nobody on a root daemon needs root");
    }
    let setup = Setup::new("ctl-nobody");
    let daemon = setup.start(&[]);
    let as_nobody = |action: &str| {
        let mut command = setup.command(&[action]);
        command.uid(NOBODY).gid(NOBODY);
        launch(command)
    };
    assert_eq!(
        result(&as_nobody("status")),
        (0, format!("running (pid {})", daemon.pid))
    );
    let (code, message) = result(&as_nobody("stop"));
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("permission denied"), "{message}");
    let (code, message) = result(&as_nobody("reload"));
    assert_eq!(code, 3, "the daemon does not handle SIGHUP: {message}");
    assert!(daemon.alive());
}

/// The pids of the live `fx_control` processes that run with this pid file.
fn daemons_of(pid_file: &Path) -> Vec<i32> {
    let wanted = format!("FX_PID_FILE={}", pid_file.display());
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| {
            let exe_ok = std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|p| p == Path::new(exe("fx_control")));
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            exe_ok && is_alive(*pid) && env.split(|b| *b == 0).any(|v| v == wanted.as_bytes())
        })
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn restart_keeps_exactly_one_daemon() {
    let setup = Setup::new("ctl-restart");
    let old = setup.start(&[]);
    assert_eq!(daemons_of(&setup.pid_file), [old.pid]);
    let _ = std::fs::remove_file(&setup.out);
    let output = setup.run(&["restart", "--again"]);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    // The launcher exited 0 only once the new daemon was ready: it has reported by now.
    let report = common::wait_for_report(&setup.out);
    let new = LiveDaemon::new(common::report_pid(&report));
    assert!(report.ends_with(" args=--again\n"), "{report}");
    assert!(gone_within(old.pid, Duration::from_secs(1)));
    assert_ne!(new.pid, old.pid);
    assert_eq!(daemons_of(&setup.pid_file), [new.pid]);
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", new.pid))
    );
    // Restart with nothing running simply starts.
    assert_eq!(code(&setup.run(&["stop"])), 0);
    let _ = std::fs::remove_file(&setup.out);
    assert_eq!(code(&setup.run(&["restart"])), 0);
    let third = LiveDaemon::new(common::report_pid(&common::wait_for_report(&setup.out)));
    assert_eq!(daemons_of(&setup.pid_file), [third.pid]);
}

#[test]
fn reload_refuses_a_daemon_that_does_not_handle_sighup() {
    for (hup, why) in [
        ("default", "does not handle SIGHUP"),
        ("ignore", "ignores SIGHUP"),
    ] {
        let setup = Setup::new("ctl-nohup").with("FX_HUP", hup);
        let daemon = setup.start(&[]);
        let (code, message) = result(&setup.run(&["reload"]));
        assert_eq!(code, 3, "{message}");
        assert!(message.contains(why), "{message}");
        std::thread::sleep(Duration::from_millis(50));
        assert!(daemon.alive(), "{hup}: the daemon was not killed");
    }
}

#[test]
fn reload_of_a_daemon_that_does_not_acknowledge_says_it_only_signalled() {
    let setup = Setup::new("ctl-hup").with("FX_HUP", "catch");
    let daemon = setup.start(&[]);
    let (code, message) = result(&setup.run(&["reload"]));
    assert_eq!(code, 0, "{message}");
    assert!(
        message.contains(&format!("signalled pid {} with SIGHUP", daemon.pid))
            && message.contains("does not acknowledge"),
        "{message}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&setup.out)
        .unwrap()
        .contains(" hups=1 ")
    {
        assert!(Instant::now() < deadline, "the daemon never got SIGHUP");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(daemon.alive());
}

/// The attribute: `#[daemon(pid_file = ..., commands = true)]` maps the first argument to the actions.
#[test]
fn the_attribute_maps_the_first_argument_to_actions() {
    let (_dir, out) = scratch("ctl-attribute");
    let fixture = |args: &[&str]| {
        let mut command = common::fixture("fx_commands", &out);
        command.args(args);
        command
    };
    // A previous run that crashed may have left its daemon: stop it first (the lock says whether it runs).
    let _ = launch(fixture(&["stop"]));
    assert_eq!(result(&launch(fixture(&["status"]))).0, 3);
    // A typo of an action is refused, not passed to the program (which would start the daemon).
    let output = launch(fixture(&["stauts"]));
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr_text(&output),
        "fx_commands: unknown action `stauts`: did you mean `status`? (`fx_commands help` lists the \
         actions)\n"
    );
    assert_eq!(
        result(&launch(fixture(&["status"]))).0,
        3,
        "nothing started"
    );
    for word in ["help", "--help", "-h"] {
        let output = launch(fixture(&[word]));
        assert_eq!(code(&output), 0, "{word}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.starts_with("Usage: fx_commands [ACTION]"),
            "{word}: {text}"
        );
        for action in ["start", "stop", "status", "restart", "reload", "help"] {
            assert!(
                text.contains(&format!("\n  {action} ")),
                "{word}: {action} in {text}"
            );
        }
    }
    assert_eq!(
        result(&launch(fixture(&["status"]))).0,
        3,
        "nothing started"
    );
    let daemon = start(fixture(&["start", "--port", "7"]), &out);
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(report.ends_with(" args=--port|7\n"), "{report}");
    assert_eq!(
        result(&launch(fixture(&["status"]))),
        (0, format!("running (pid {})", daemon.pid))
    );
    let output = launch(fixture(&["reload"]));
    assert_eq!(
        code(&output),
        3,
        "SIGHUP would kill it: {}",
        stderr_text(&output)
    );
    assert!(daemon.alive());
    assert_eq!(
        result(&launch(fixture(&["stop"]))),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!daemon.alive());
    // Killed by SIGTERM's default action, it left its files; `stop` saw the lock go and removed them.
    assert_eq!(result(&launch(fixture(&["status"]))).0, 3);
    let _ = std::fs::remove_file("/tmp/daemon-rt-fx-commands.pid");
    let _ = std::fs::remove_file("/tmp/daemon-rt-fx-commands.pid.lock");
}

/// `reload` waits for the daemon's own answer through the signal API's acknowledgement.
#[test]
fn reload_waits_for_the_daemons_answer() {
    let setup = Setup::new("ctl-ack-ok").with("FX_HUP", "ack-ok");
    let daemon = setup.start(&[]);
    for n in 1..=3 {
        assert_eq!(
            result(&setup.run(&["reload"])),
            (0, format!("reloaded (pid {})", daemon.pid))
        );
        // The answer came after the daemon took the event: it has counted it by now.
        let report = std::fs::read_to_string(&setup.out).unwrap();
        assert!(report.contains(&format!(" hups={n} ")), "{report}");
    }
    // A daemon on the signal API ends main on SIGTERM, which removes its pid file.
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert_eq!(code(&setup.run(&["status"])), 3);
}

#[test]
fn reload_fails_with_the_daemons_message() {
    let setup = Setup::new("ctl-ack-fail").with("FX_HUP", "ack-fail");
    let daemon = setup.start(&[]);
    assert_eq!(
        result(&setup.run(&["reload"])),
        (
            1,
            format!(
                "fx_control: reload failed (pid {}): bad config: line 3",
                daemon.pid
            )
        )
    );
    assert!(daemon.alive());
}

#[test]
fn reload_gives_up_on_a_daemon_that_never_answers() {
    let setup = Setup::new("ctl-ack-never")
        .with("FX_HUP", "ack-never")
        .with("FX_RELOAD_TIMEOUT_MS", "500");
    let daemon = setup.start(&[]);
    let begun = Instant::now();
    let (code, message) = result(&setup.run(&["reload"]));
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains(&format!(
            "pid {} took the reload but did not say how it went",
            daemon.pid
        )),
        "{message}"
    );
    assert!(begun.elapsed() >= Duration::from_millis(500));
    assert!(daemon.alive());
}

/// The daemon exits, but a child it forked shares its lock file's descriptor: `stop` waits for the lock
/// too, within the schedule's time, and says so when the lock outlives it.
#[test]
fn stop_waits_for_the_lock_a_child_shares() {
    let setup = Setup::new("ctl-child")
        .with("FX_CHILD_MS", "1500")
        .with("FX_RETRY", "TERM/5/KILL/5");
    let daemon = setup.start(&[]);
    let child: i32 = std::fs::read_to_string(setup.out.with_extension("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _child = LiveDaemon::new(child);
    let cpu = children_cpu();
    let (code, message) = result(&setup.run(&["stop"]));
    // The wait is woken by the daemon's descriptor closing, never by stop's own looks at the lock: it
    // used to busy-loop on them for the whole wait (review of issue 18, finding 2b).
    let spent = children_cpu().saturating_sub(cpu);
    assert!(
        spent < Duration::from_millis(400),
        "stop spent {spent:?} of CPU waiting"
    );
    assert_eq!(code, 0, "{message}");
    assert!(!daemon.alive());
    // The lock went only when the child exited: by the time stop returned, it had.
    assert!(
        !is_alive(child),
        "stop returned while the child still held the lock"
    );

    let setup = Setup::new("ctl-child-long")
        .with("FX_CHILD_MS", "30000")
        .with("FX_RETRY", "TERM/0.5/KILL/0.5");
    let daemon = setup.start(&[]);
    let child: i32 = std::fs::read_to_string(setup.out.with_extension("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _child = LiveDaemon::new(child);
    let (code, message) = result(&setup.run(&["stop"]));
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains(&format!("pid {} exited, but its lock", daemon.pid))
            && message.contains("shares its descriptor"),
        "{message}"
    );
    assert!(is_alive(child), "the child was not signalled");
    // The library call in a process that goes on: the wait for the lock leaves no thread behind
    // (review note: a helper thread blocked in flock(2) used to stay for as long as the child held it).
    let daemon = setup.start(&[]);
    let child: i32 = std::fs::read_to_string(setup.out.with_extension("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _child = LiveDaemon::new(child);
    let output = setup.run(&["lib-stop"]);
    assert_eq!(
        stdout_text(&output),
        "1 threads=1\n",
        "{}",
        stderr_text(&output)
    );
    assert!(!daemon.alive());
}

/// Review F2: run in a pid namespace of its own whose `/proc` is still the host's (`unshare --pid --fork`
/// without `--mount-proc`), an action must not act on the pid `/proc/locks` names, which is numbered in the
/// host's namespace: a decoy given that very number inside the namespace would be the one a pidfd pins.
#[test]
fn actions_refuse_when_proc_is_not_their_pid_namespaces() {
    if !nix::unistd::geteuid().is_root() {
        return skip("unshare --pid needs root");
    }
    let setup = Setup::new("ctl-pidns");
    let daemon = setup.start(&["start"]);
    // The shell is pid 1 of the new namespace; its ns_last_pid makes the decoy take the daemon's number.
    let script = r#"
        echo $((P - 1)) > /proc/sys/kernel/ns_last_pid || exit 90
        sleep 60 & decoy=$!
        echo "decoy=$decoy"
        "$FX" status; echo "status=$?"
        "$FX" stop; echo "stop=$?"
        kill -0 $decoy && echo "decoy alive"
        kill -9 $decoy; wait
    "#;
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--kill-child", "sh", "-c", script])
        .env("P", daemon.pid.to_string())
        .env("FX", exe("fx_control"))
        .env("FX_PID_FILE", &setup.pid_file)
        .env("FX_RETRY", "TERM/1/KILL/1")
        .env("FIXTURE_OUT", &setup.out)
        .stdin(Stdio::null());
    let output = launch(command);
    let text = stdout_text(&output);
    let errors = stderr_text(&output);
    assert!(
        text.contains(&format!("decoy={}\n", daemon.pid)),
        "the decoy did not get the daemon's number: {text} {errors}"
    );
    assert!(text.contains("status=4"), "{text} {errors}");
    assert!(text.contains("stop=1"), "{text} {errors}");
    assert!(
        text.contains("decoy alive"),
        "the decoy was signalled: {text} {errors}"
    );
    assert!(
        errors.contains("/proc is not the procfs of this process's pid namespace"),
        "{errors}"
    );
    assert!(daemon.alive(), "{text} {errors}");
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid))
    );
}

/// Review F3: a lock file with another hard link is refused, as the start refuses it: the other name may
/// be any root-owned file that an unrelated root process flocks (a cron job under `flock -n`), which a
/// user who may write the run directory could link in place of the daemon's lock file.
#[test]
fn a_lock_file_with_several_links_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return skip("the victim must be a root process holding a root-owned file's lock");
    }
    let setup = Setup::new("ctl-nlink");
    let victim_lock = setup.dir.join("victim.lock");
    std::fs::write(&victim_lock, "").unwrap();
    std::fs::set_permissions(&victim_lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    // One process that takes the lock and sleeps (perl-base is always there; flock(1) would leave its
    // child behind when killed).
    let victim = Command::new("perl")
        .args([
            "-e",
            "open(F, '<', $ARGV[0]) or die; flock(F, 2) or die; sleep 60",
        ])
        .arg(&victim_lock)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let victim = common::ChildGuard(victim);
    let holder = victim.0.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::proc_locks().contains(&format!(" {holder} ")) {
        assert!(Instant::now() < deadline, "flock never took its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::hard_link(&victim_lock, setup.lock_file()).unwrap();
    let (code, message) = result(&setup.run(&["status"]));
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("hard links"), "{message}");
    let stop = setup
        .command(&["stop"])
        .env("FX_RETRY", "TERM/1/KILL/1")
        .output();
    let (code, message) = result(&stop.unwrap());
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("hard links"), "{message}");
    assert!(is_alive(holder), "the victim was signalled");
}

/// Review F11: an action whose stdout or stderr is a pipe nobody reads any more (`myapp status | grep -q
/// running` once grep has answered) exits with its code, never a panic (101).
#[test]
fn a_closed_pipe_on_stdout_or_stderr_is_no_panic() {
    let setup = Setup::new("ctl-epipe");
    for (args, code, on_stdout) in [
        (&["status"][..], 3, true),
        (&["status", "--json"][..], 3, true),
        (&["reload"][..], 7, false),
    ] {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        drop(read_end);
        let mut command = setup.command(args);
        if on_stdout {
            command
                .stdout(Stdio::from(write_end))
                .stderr(Stdio::piped());
        } else {
            command
                .stderr(Stdio::from(write_end))
                .stdout(Stdio::piped());
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr_text(&output)
        );
    }
}

/// Review F6: a child forked by the daemon (a prefork worker) that drops the inherited `Running` leaves the
/// parent's pid and lock files alone: the daemon still runs, so status, stop and a second start must
/// still find its lock.
#[test]
fn a_forked_child_dropping_running_leaves_the_parents_files() {
    let setup = Setup::new("ctl-fork-drop").with("FX_FORK_DROP", "1");
    let daemon = setup.start(&["start"]);
    assert!(setup.pid_file.exists(), "the child removed the pid file");
    assert!(
        setup.lock_file().exists(),
        "the child removed the lock file"
    );
    assert_eq!(
        std::fs::read_to_string(&setup.pid_file).unwrap(),
        format!("{}\n", daemon.pid)
    );
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid))
    );
    let other_out = setup.dir.join("second-report");
    let mut second = setup.command(&["start"]);
    second
        .env("FIXTURE_OUT", &other_out)
        .env_remove("FX_FORK_DROP");
    let second = launch(second);
    if second.status.success() {
        let _second = LiveDaemon::new(common::report_pid(&common::wait_for_report(&other_out)));
        panic!("a second daemon started beside pid {}", daemon.pid);
    }
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
}

/// Mounts made by a test, unmounted (in reverse order) when dropped.
struct Mounts(Vec<PathBuf>);

impl Mounts {
    /// `mount ARGS... TARGET`; whether it worked.
    fn mount(&mut self, args: &[&str], target: &Path) -> bool {
        let ok = Command::new("mount")
            .args(args)
            .arg(target)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            self.0.push(target.to_path_buf());
        }
        ok
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let unmounted = Command::new("umount")
                .arg(target)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
    }
}

/// Review F13: on overlayfs with its upper layer on another file system (as on btrfs, whose subvolumes have
/// their own `st_dev`), `/proc/locks` names the lock file by the superblock's device, not by `stat`'s: the
/// actions and the start must still find the daemon.
#[test]
fn a_daemon_on_overlayfs_is_found() {
    if !nix::unistd::geteuid().is_root() {
        return skip("mounting an overlay needs root");
    }
    let mut setup = Setup::new("ctl-overlay");
    let (lower, upper_fs, merged) = (
        setup.dir.join("lower"),
        setup.dir.join("upper-fs"),
        setup.dir.join("merged"),
    );
    for dir in [&lower, &upper_fs, &merged] {
        std::fs::create_dir(dir).unwrap();
    }
    let mut mounts = Mounts(Vec::new());
    if !mounts.mount(&["-t", "tmpfs", "tmpfs"], &upper_fs) {
        return skip("cannot mount a tmpfs here");
    }
    let (upper, work) = (upper_fs.join("upper"), upper_fs.join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if !mounts.mount(&["-t", "overlay", "overlay", "-o", &options], &merged) {
        return skip("cannot mount an overlay here (no overlayfs)");
    }
    setup.pid_file = merged.join("app.pid");
    let daemon = setup.start(&["start"]);
    // The case this test is about: stat's device is not the one the kernel's lock table prints.
    let stat_dev = {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(setup.lock_file()).unwrap().dev();
        format!("{:02x}:{:02x}:", libc::major(dev), libc::minor(dev))
    };
    let locks = common::proc_locks();
    let line = locks
        .lines()
        .find(|l| l.contains(&format!(" {} ", daemon.pid)))
        .unwrap_or_default()
        .to_string();
    if line.contains(&stat_dev) {
        println!("note: here overlayfs reports the superblock's device in stat too: {line}");
    }
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", daemon.pid)),
        "{line} (stat {stat_dev})"
    );
    let other_out = setup.dir.join("second-report");
    let mut second = setup.command(&["start"]);
    second.env("FIXTURE_OUT", &other_out);
    let second = launch(second);
    if second.status.success() {
        let _second = LiveDaemon::new(common::report_pid(&common::wait_for_report(&other_out)));
        panic!("a second daemon started beside pid {}", daemon.pid);
    }
    assert!(
        stderr_text(&second).contains(&format!("(pid {})", daemon.pid)),
        "{}",
        stderr_text(&second)
    );
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!daemon.alive());
    drop(daemon);
    drop(mounts);
}

/// Review note (events.rs): with two `signals()` subscriptions (one thread only waiting for Terminate),
/// one SIGHUP is one reload: the record says `reload N ok` after the Nth `reload`, never a second,
/// unanswered `pending` number that a later `reload` would wait on for ever.
#[test]
fn one_sighup_is_one_reload_with_two_subscriptions() {
    let (dir, _) = scratch("ctl-two-subs-second");
    let second = dir.join("second");
    let setup = Setup::new("ctl-two-subs")
        .with("FX_HUP", "ack-ok")
        .with("FX_SECOND_SUB", second.to_str().unwrap());
    let daemon = setup.start(&["start"]);
    for n in 1..=2 {
        assert_eq!(
            result(&setup.run(&["reload"])),
            (0, format!("reloaded (pid {})", daemon.pid))
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&second).ok() != Some(format!("second took {n}\n")) {
            assert!(
                Instant::now() < deadline,
                "the second subscription never took reload {n}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let record = std::fs::read_to_string(setup.lock_file()).unwrap();
        assert!(record.contains(&format!("\nreload {n} ok\n")), "{record}");
    }
}

/// Issue 17.3, the README's own pattern: `user = "nobody"` and a pid file in a directory of root's. A
/// clean `stop` leaves `status` at 3 ("not running"), never 1 ("dead, and its pid file exists"): the
/// daemon could not remove its files after the drop, `stop` (as root) removes them once the lock is
/// released.
#[test]
fn after_a_clean_stop_status_says_not_running() {
    if !is_root() {
        return skip("a daemon running as nobody needs root to start");
    }
    let mut setup = Setup::new("ctl-clean-stop").with("FX_USER", "nobody");
    let reports = setup.dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::os::unix::fs::chown(&reports, Some(NOBODY), Some(NOBODY)).unwrap();
    setup.out = reports.join("report");
    let daemon = setup.start(&[]);
    assert_eq!(
        result(&setup.run(&["stop"])),
        (0, format!("stopped (pid {}, SIGTERM)", daemon.pid))
    );
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
}

/// Issue 17.8: `reopen-logs` signals the configured `reopen_logs_on` signal through the pinned holder and
/// waits for the daemon's answer: a reopen the daemon's user may not make (its log directory is root's)
/// fails with the OS error's text, which the old log file gets too; once it may, the action succeeds.
/// `reload` tied to the same signal (SIGHUP) fails with the reopen; without `reopen_logs_on` the action
/// is refused (LSB 3) before anything is signalled.
#[test]
fn reopen_logs_waits_for_the_daemons_answer() {
    if !is_root() {
        return skip("a daemon running as nobody needs root to start");
    }
    for signal in ["SIGUSR1", "SIGHUP"] {
        let mut setup = Setup::new("ctl-reopen")
            .with("FX_USER", "nobody")
            .with("FX_REOPEN_ON", signal)
            .with("FX_HUP", "ack-ok");
        let reports = setup.dir.join("reports");
        std::fs::create_dir(&reports).unwrap();
        std::os::unix::fs::chown(&reports, Some(NOBODY), Some(NOBODY)).unwrap();
        setup.out = reports.join("report");
        let logs = setup.dir.join("logs");
        std::fs::create_dir(&logs).unwrap();
        let log = logs.join("app.log");
        setup = setup.with("FX_STDERR", log.to_str().unwrap());
        let daemon = setup.start(&[]);
        // logrotate's `create` mode moved the file away; nobody may not create it again.
        let rotated = logs.join("app.log.1");
        std::fs::rename(&log, &rotated).unwrap();
        let action = if signal == "SIGHUP" {
            "reload"
        } else {
            "reopen-logs"
        };
        let (status, message) = result(&setup.run(&[action]));
        let why = format!(
            "cannot reopen log file {}: Permission denied (os error 13)",
            log.display()
        );
        assert_eq!(status, 1, "{signal}: {message}");
        assert_eq!(
            message,
            format!(
                "fx_control: reopen of the log files failed (pid {}): {why}",
                daemon.pid
            ),
            "{signal}"
        );
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            format!("fx_control: {why}\n"),
            "{signal}: the old log says why"
        );
        std::os::unix::fs::chown(&logs, Some(NOBODY), Some(NOBODY)).unwrap();
        let done = if signal == "SIGHUP" {
            format!("reloaded (pid {})", daemon.pid)
        } else {
            format!("reopened the log files (pid {})", daemon.pid)
        };
        assert_eq!(result(&setup.run(&[action])), (0, done), "{signal}");
        assert!(log.exists(), "{signal}: the new file");
        assert!(daemon.alive());
    }
    let setup = Setup::new("ctl-reopen-none");
    let daemon = setup.start(&[]);
    let (status, message) = result(&setup.run(&["reopen-logs"]));
    assert_eq!(status, 3, "{message}");
    assert!(
        message.contains("reopen_logs_on is not configured"),
        "{message}"
    );
    assert!(daemon.alive());
}

/// CPU time (user and system) of the reaped children of this test process so far.
fn children_cpu() -> Duration {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    time(usage.user_time()) + time(usage.system_time())
}

/// Review of issue 18, finding 2: a daemon that released its lock but has not exited yet (still in its
/// exit path), a `stop` waiting for it, and a new daemon started meanwhile. `stop` then took the lock of
/// the old, unlinked lock file and removed the new daemon's pid file. It removes nothing unless the lock
/// file's path still names the file whose lock it took.
#[test]
fn stops_clean_up_never_removes_a_new_daemons_files() {
    let setup = Setup::new("ctl-clean-race");
    let fifo = setup.dir.join("stamp.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let setup = setup.with("FX_STAMP", fifo.to_str().unwrap());
    let old = setup.start(&[]);
    let stop = setup
        .command(&["stop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The old daemon returns from main (its files go, its lock is released) and then blocks writing its
    // stamp to the FIFO, which nobody reads yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while setup.pid_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the old daemon kept its pid file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let new = setup.start(&[]);
    assert_eq!(
        std::fs::read_to_string(&setup.pid_file).unwrap(),
        format!("{}\n", new.pid)
    );
    // Let the old daemon exit; stop returns once it has.
    let reader = std::fs::File::open(&fifo).unwrap();
    let output = stop.wait_with_output().unwrap();
    drop(reader);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert!(!old.alive());
    assert_eq!(
        std::fs::read_to_string(&setup.pid_file).unwrap_or_default(),
        format!("{}\n", new.pid),
        "stop removed the new daemon's pid file"
    );
    assert_eq!(
        result(&setup.run(&["status"])),
        (0, format!("running (pid {})", new.pid))
    );
}

/// Review of issue 18, finding 5: a worker the daemon forked (without exec) has no thread of the runtime
/// to reopen its log files; the signal handler reopens them itself there, as before.
#[test]
fn a_forked_worker_reopens_its_log_files_too() {
    let setup = Setup::new("ctl-worker-reopen");
    let log = setup.dir.join("app.log");
    let setup = setup
        .with("FX_CHILD_MS", "10000")
        .with("FX_STDERR", log.to_str().unwrap())
        .with("FX_REOPEN_ON", "SIGUSR1");
    let daemon = setup.start(&[]);
    let worker: i32 = std::fs::read_to_string(setup.out.with_extension("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let worker = LiveDaemon::new(worker);
    std::fs::rename(&log, setup.dir.join("app.log.1")).unwrap();
    assert_eq!(
        result(&setup.run(&["reopen-logs"])),
        (0, format!("reopened the log files (pid {})", daemon.pid))
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fd2 = std::fs::read_link(worker.proc("fd/2")).unwrap();
        if fd2 == log {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker's stderr is still {}",
            fd2.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Review of issue 18, finding 6: a daemon that never became ready was killed by the launcher's timeout
/// (as nobody, in a directory of root's, it could not have removed its files anyway): the launcher, who
/// started it, removes them once its lock is gone.
#[test]
fn a_start_that_times_out_leaves_no_files() {
    if !is_root() {
        return skip("a daemon running as nobody needs root to start");
    }
    let mut setup = Setup::new("ctl-timeout-files")
        .with("FX_USER", "nobody")
        .with("FX_HANG", "1")
        .with("FX_READY_TIMEOUT_S", "1");
    let reports = setup.dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::os::unix::fs::chown(&reports, Some(NOBODY), Some(NOBODY)).unwrap();
    setup.out = reports.join("report");
    let (status, message) = result(&setup.run(&["start"]));
    assert_eq!(status, 1, "{message}");
    assert!(
        message.contains("did not report ready within 1s"),
        "{message}"
    );
    let pid = common::report_pid(&common::wait_for_report(&setup.out));
    assert!(gone_within(pid, Duration::from_secs(5)));
    assert!(!setup.pid_file.exists() && !setup.lock_file().exists());
    assert_eq!(result(&setup.run(&["status"])), (3, "not running".into()));
}
