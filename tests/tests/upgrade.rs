//! `upgrade`: a new daemon takes over the running one's listening socket and lock, switches on its
//! readiness, and the old one drains; a new daemon that fails before it is ready is ended, and the old one
//! serves on. Real daemons (`fx_upgrade`, an echo server that answers `PID LINE`), real TCP clients on
//! loopback, observed through /proc and /proc/locks.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    TempDir, fixture, gone_within, is_alive, is_root, kill_and_wait, launch, scratch, skip,
};

/// One server's files, and every pid it ran as, killed when dropped.
struct Server {
    dir: TempDir,
    pid_file: PathBuf,
    out: PathBuf,
    port: u16,
    pids: Vec<i32>,
}

impl Server {
    /// Starts `fx_upgrade`.
    fn start(tag: &str) -> Server {
        Server::start_with(tag, &[])
    }

    /// Starts `fx_upgrade ARGS`.
    fn start_with(tag: &str, args: &[&str]) -> Server {
        let (dir, out) = scratch(tag);
        let pid_file = dir.join("app.pid");
        let mut server = Server {
            dir,
            pid_file,
            out,
            port: 0,
            pids: Vec::new(),
        };
        let output = launch(server.command(args));
        assert!(
            output.status.success(),
            "start: {}",
            common::stderr_text(&output)
        );
        let (pid, port) = server.latest();
        server.port = port;
        server.pids.push(pid);
        server
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = fixture("fx_upgrade", &self.out);
        command.args(args).env("FX_PID_FILE", &self.pid_file);
        command
    }

    /// The pid and port of the daemon that reported (right after a start, the only one).
    fn latest(&self) -> (i32, u16) {
        let text = common::wait_for_report(&self.out);
        let line = text.lines().last().expect("a report line");
        let mut fields = line.split_whitespace();
        let pid = fields.next().and_then(|p| p.parse().ok()).expect("pid");
        let port = fields.next().and_then(|p| p.parse().ok()).expect("port");
        (pid, port)
    }

    fn pid_file_pid(&self) -> i32 {
        std::fs::read_to_string(&self.pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid in the pid file")
    }

    /// `fx_upgrade upgrade` with extra environment; returns its output and the new pid (from the report).
    fn upgrade(&mut self, env: &[(&str, &str)]) -> Output {
        let mut command = self.command(&["upgrade"]);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = launch(command);
        if output.status.success() {
            let pid = upgraded_to(&output);
            self.wait_reported(pid);
            self.pids.push(pid);
        }
        output
    }

    fn wait_reported(&self, pid: i32) {
        wait_reported(&self.out, pid);
    }

    fn ask(&self, line: &str) -> std::io::Result<String> {
        ask(self.port, line)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for pid in &self.pids {
            kill_and_wait(*pid);
        }
        if let Ok(text) = std::fs::read_to_string(&self.out) {
            for pid in text
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            {
                kill_and_wait(pid);
            }
        }
    }
}

/// One connection, one line, one answer (`PID LINE`).
fn ask(port: u16, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(answer.trim_end().to_string())
}

/// Waits until daemon `pid` has reported in `out`. It reports once its `ready()` has returned, which may
/// be after `upgrade` (or its launcher) exits: the last line of the report can still be the old daemon's.
fn wait_reported(out: &Path, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted = pid.to_string();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text
            .lines()
            .any(|line| line.split_whitespace().next() == Some(wanted.as_str()))
        {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} never reported");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The new daemon's pid, as a successful `upgrade` says it: `upgraded (pid OLD -> pid NEW)`.
fn upgraded_to(output: &Output) -> i32 {
    let said = text(output);
    said.split_once("-> pid ")
        .and_then(|(_, rest)| rest.split(')').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no new pid in {said:?}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        common::stderr_text(output)
    )
}

/// The exclusive flocks /proc/locks shows on the file at `path`.
fn flocks_on(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    common::proc_locks()
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str())
        })
        .count()
}

#[test]
fn twenty_upgrades_under_a_client_loop_refuse_and_reset_nothing() {
    let mut server = Server::start("upgrade-loop");
    let lock_file = server.dir.join("app.pid.lock");
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    // The client: short connections as fast as it can, each answered correctly or counted as a failure.
    let client = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut served, mut failed) = (0u64, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && served < 1_000_000 {
                let line = format!("hello {served}");
                match ask(port, &line) {
                    Ok(answer) if answer.ends_with(&format!(" {line}")) => served += 1,
                    Ok(answer) => failed.push(format!("wrong answer {answer:?} to {line:?}")),
                    Err(error) => failed.push(format!("{line}: {error}")),
                }
            }
            (served, failed)
        })
    };
    // The sampler: at every instant the kernel shows one flock on the lock file, and `status` says the
    // daemon runs and names one of the daemons (checked against the pids once all are known: the one it
    // names may have exited since, an upgrade having replaced it).
    let sampler = {
        let stop = Arc::clone(&stop);
        let lock_file = lock_file.clone();
        let status = server.command(&["status"]);
        std::thread::spawn(move || {
            let mut status = status;
            let mut wrong = Vec::new();
            let mut named = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let locks = flocks_on(&lock_file);
                if locks != 1 {
                    wrong.push(format!("{locks} flocks on the lock file"));
                }
                let output = status.output().expect("status");
                let said = String::from_utf8_lossy(&output.stdout).into_owned();
                let pid = said
                    .trim()
                    .strip_prefix("running (pid ")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .and_then(|pid| pid.parse::<i32>().ok());
                match pid {
                    Some(pid) if output.status.code() == Some(0) => named.push(pid),
                    _ => wrong.push(format!("status said {said:?} ({:?})", output.status.code())),
                }
            }
            (named, wrong)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    for round in 0..20 {
        let before = server.pid_file_pid();
        let output = server.upgrade(&[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "round {round}: {}",
            text(&output)
        );
        let after = server.pid_file_pid();
        assert_ne!(before, after, "round {round}: the pid did not change");
        assert!(
            text(&output).contains(&format!("upgraded (pid {before} -> pid {after})")),
            "{}",
            text(&output)
        );
        assert!(
            !is_alive(before),
            "round {round}: the old daemon {before} still runs"
        );
        assert!(is_alive(after));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (served, failed) = client.join().expect("client");
    let (named, mut wrong) = sampler.join().expect("sampler");
    wrong.extend(
        named
            .iter()
            .filter(|pid| !server.pids.contains(pid))
            .map(|pid| format!("status named pid {pid}, not one of the daemons")),
    );
    println!(
        "20 upgrades: {served} connections served, {} failed; {} status samples",
        failed.len(),
        named.len()
    );
    assert!(
        failed.is_empty(),
        "{} failures, first: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        wrong.is_empty(),
        "{} bad samples, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(served > 100, "only {served} connections");
    let mut pids = server.pids.clone();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(
        pids.len(),
        21,
        "every upgrade started a new daemon: {pids:?}"
    );
}

#[test]
fn a_new_daemon_that_fails_before_ready_is_ended_and_the_old_serves_on() {
    let mut server = Server::start("upgrade-rollback");
    let old = server.pid_file_pid();
    for (mode, cause) in [
        ("exit", "exited before it was ready"),
        ("panic", "the new configuration is broken"),
        ("error", "bad config: line 3"),
        ("hang", "did not report ready within 1s"),
    ] {
        let reported_before = std::fs::read_to_string(&server.out).unwrap_or_default();
        let output = server.upgrade(&[("FX_FAIL", mode), ("FX_READY_TIMEOUT_S", "1")]);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(1), "{mode}: {said}");
        assert!(
            said.contains(&format!("upgrade failed, pid {old} keeps serving")),
            "{mode}: {said}"
        );
        assert!(said.contains(cause), "{mode}: {said}");
        // The old daemon never learnt of it: same pid file, same process, serving.
        assert_eq!(server.pid_file_pid(), old, "{mode}");
        assert!(is_alive(old), "{mode}");
        assert_eq!(server.ask(mode).expect("served"), format!("{old} {mode}"));
        let status = launch(server.command(&["status"]));
        assert_eq!(
            String::from_utf8_lossy(&status.stdout).trim(),
            format!("running (pid {old})")
        );
        assert_eq!(
            std::fs::read_to_string(&server.out).unwrap_or_default(),
            reported_before
        );
        // Nothing of the failed daemon is left: only the old daemon runs this program's binary.
        let others: Vec<i32> = processes_of(&server)
            .into_iter()
            .filter(|pid| *pid != old)
            .collect();
        for pid in &others {
            assert!(
                gone_within(*pid, Duration::from_secs(5)),
                "{mode}: pid {pid} left running"
            );
        }
    }
    // And it still upgrades afterwards.
    let output = server.upgrade(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// The `fx_upgrade` processes of `server` (tests run in parallel): those whose environment names its pid
/// file.
fn processes_of(server: &Server) -> Vec<i32> {
    let exe = Path::new(common::exe("fx_upgrade"));
    let wanted = format!("FX_PID_FILE={}", server.pid_file.display());
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let ours = environ
                .split(|b| *b == 0)
                .any(|var| var == wanted.as_bytes());
            (target == exe && ours).then_some(pid)
        })
        .collect()
}

#[test]
fn an_open_connection_is_served_to_its_end_by_the_old_daemon() {
    let server = Server::start("upgrade-drain");
    let old = server.pid_file_pid();
    let mut long = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    long.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut lines = BufReader::new(long.try_clone().expect("clone"));
    let mut exchange = |line: &str| {
        long.write_all(format!("{line}\n").as_bytes())
            .expect("write");
        let mut answer = String::new();
        lines.read_line(&mut answer).expect("read");
        answer.trim_end().to_string()
    };
    assert_eq!(exchange("before"), format!("{old} before"));
    let upgrade = std::thread::spawn({
        let command = server.command(&["upgrade"]);
        move || launch(command)
    });
    // The switch: the pid file names the new daemon, which answers new connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.pid_file_pid() == old {
        assert!(Instant::now() < deadline, "no switch");
        std::thread::sleep(Duration::from_millis(5));
    }
    let new = server.pid_file_pid();
    // Until the old daemon hears it was upgraded, both accept on the socket; then only the new one.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.ask("new").expect("served") != format!("{new} new") {
        assert!(Instant::now() < deadline, "the new daemon never answered");
    }
    // The open connection is still the old daemon's, which drains it before it goes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(is_alive(old), "the old daemon left an open connection");
    assert_eq!(exchange("after"), format!("{old} after"));
    drop(long);
    drop(lines);
    let output = upgrade.join().expect("upgrade");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(gone_within(old, Duration::from_secs(5)));
    kill_and_wait(new);
}

#[test]
fn two_upgrades_at_once_one_wins() {
    let mut server = Server::start("upgrade-concurrent");
    let old = server.pid_file_pid();
    // The new daemons take a second to get ready, so the two upgrades overlap.
    let spawn = |server: &Server| {
        let mut command = server.command(&["upgrade"]);
        command.env("FX_READY_MS", "1000");
        std::thread::spawn(move || launch(command))
    };
    let first = spawn(&server);
    std::thread::sleep(Duration::from_millis(100));
    let second = spawn(&server);
    let outputs = [first.join().expect("first"), second.join().expect("second")];
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let said: Vec<String> = outputs.iter().map(text).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?} {said:?}"
    );
    assert!(
        said.iter()
            .any(|s| s.contains("another upgrade is in progress")),
        "{said:?}"
    );
    let new = server.pid_file_pid();
    server.pids.push(new);
    assert_ne!(new, old);
    assert!(gone_within(old, Duration::from_secs(5)));
    let others: Vec<i32> = processes_of(&server)
        .into_iter()
        .filter(|pid| *pid != new)
        .collect();
    for pid in &others {
        assert!(
            gone_within(*pid, Duration::from_secs(5)),
            "pid {pid} left running"
        );
    }
}

#[test]
fn the_daemons_own_user_may_upgrade_another_user_may_not() {
    if !is_root() {
        return skip("running a daemon as nobody and another user needs root");
    }
    // A daemon nobody started (its own files, in its own directory): nobody may upgrade it.
    let (dir, out) = scratch("upgrade-users");
    std::os::unix::fs::chown(dir.path(), Some(common::NOBODY), Some(common::NOBODY))
        .expect("chown");
    let pid_file = dir.join("app.pid");
    let as_user = |uid: u32, args: &[&str]| {
        let mut command = fixture("fx_upgrade", &out);
        command
            .args(args)
            .env("FX_PID_FILE", &pid_file)
            .uid(uid)
            .gid(uid);
        command
    };
    let started = launch(as_user(common::NOBODY, &[]));
    assert!(started.status.success(), "{}", text(&started));
    let pids = || -> Vec<i32> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let _cleanup = Cleanup::daemons(&out, &pid_file);
    common::wait_for_report(&out);
    let old = *pids().last().expect("started");
    // Another user: refused (it may not even use the directory), and nothing changes.
    let denied = launch(as_user(12345, &["upgrade"]));
    assert_ne!(denied.status.code(), Some(0), "{}", text(&denied));
    assert!(text(&denied).contains("refusing"), "{}", text(&denied));
    assert!(is_alive(old));
    assert_eq!(pids().len(), 1);
    // The daemon's own user.
    let by_user = launch(as_user(common::NOBODY, &["upgrade"]));
    assert_eq!(by_user.status.code(), Some(0), "{}", text(&by_user));
    let second = upgraded_to(&by_user);
    wait_reported(&out, second);
    assert_ne!(second, old);
    assert!(gone_within(old, Duration::from_secs(5)));
    // The new daemon runs as its user, as the one that started it did. (Root upgrades the daemons root
    // starts, in every other test; this one's directory is nobody's, which root's actions refuse.)
    let status = std::fs::read_to_string(format!("/proc/{second}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
}

/// Ends, when dropped, every daemon that reported in the report file and the one the pid file names (a
/// daemon that switched to nobody cannot write a root's report, and one that has not reported yet is
/// named there).
struct Cleanup {
    out: PathBuf,
    pid_file: PathBuf,
}

impl Cleanup {
    fn daemons(out: &Path, pid_file: &Path) -> Cleanup {
        Cleanup {
            out: out.to_path_buf(),
            pid_file: pid_file.to_path_buf(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let reported = std::fs::read_to_string(&self.out).unwrap_or_default();
        let named = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        for pid in reported
            .lines()
            .chain(named.lines())
            .filter_map(|l| l.split_whitespace().next()?.parse::<i32>().ok())
        {
            kill_and_wait(pid);
        }
    }
}

#[test]
fn a_daemon_that_dropped_its_privileges_is_upgraded_with_the_arguments_given() {
    if !is_root() {
        return skip("a daemon that switches to nobody needs root to start");
    }
    // Not dumpable, as a hardened daemon is: its successor's descriptors are hidden from it, and it still
    // knows it was replaced (by the upgrade's lock on the lock file) and leaves the files to it.
    let (dir, out) = scratch("upgrade-dropped");
    let pid_file = dir.join("app.pid");
    let command = |args: &[&str]| {
        let mut command = fixture("fx_upgrade", &out);
        command
            .args(args)
            .env("FX_PID_FILE", &pid_file)
            .env("FX_USER", "nobody")
            .env("FX_CORE_DUMPS", "0");
        command
    };
    let started = launch(command(&[]));
    assert!(started.status.success(), "{}", text(&started));
    let _cleanup = Cleanup::daemons(&out, &pid_file);
    let old: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Its arguments are its own user's to rewrite: root does not take them.
    let refused = launch(command(&["upgrade"]));
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("give the new daemon's arguments"),
        "{}",
        text(&refused)
    );
    assert!(is_alive(old));
    let upgraded = launch(command(&["upgrade", "--"]));
    assert_eq!(upgraded.status.code(), Some(0), "{}", text(&upgraded));
    let new: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new, old);
    assert!(gone_within(old, Duration::from_secs(5)));
    // The old daemon left the lock file and the record to its successor.
    let lock = dir.join("app.pid.lock");
    let record = std::fs::read_to_string(&lock).expect("the lock file is still there");
    assert!(record.contains(&format!("pid {new}\n")), "{record}");
    assert_eq!(flocks_on(&lock), 1);
    let status = launch(command(&["status"]));
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        format!("running (pid {new})")
    );
    let stopped = launch(command(&["stop"]));
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped));
    assert!(
        !pid_file.exists() && !lock.exists(),
        "stop removes what the daemon left"
    );
}

/// The one `fx_upgrade` of `server` left, within `within`: every other one is gone by then.
fn only_one_left(server: &Server, one: i32, within: Duration) {
    for pid in processes_of(server).into_iter().filter(|pid| *pid != one) {
        assert!(
            gone_within(pid, within),
            "pid {pid} left running beside {one}"
        );
    }
    assert!(is_alive(one), "pid {one} runs");
}

/// `status` says `running (pid PID)`.
fn assert_running(server: &Server, pid: i32) {
    let status = launch(server.command(&["status"]));
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        format!("running (pid {pid})"),
        "{}",
        text(&status)
    );
}

#[test]
fn a_stop_during_an_upgrade_leaves_one_daemon_and_its_files() {
    let mut server = Server::start("upgrade-stop-during");
    let old = server.pid_file_pid();
    let mut upgrade = server.command(&["upgrade"]);
    upgrade.env("FX_READY_MS", "1500");
    let upgrading = std::thread::spawn(move || launch(upgrade));
    std::thread::sleep(Duration::from_millis(500));
    // The old daemon exits on the stop while the new one gets ready with the same lock.
    let stop = launch(server.command(&["stop"]));
    let upgraded = upgrading.join().expect("upgrade");
    assert_eq!(upgraded.status.code(), Some(0), "{}", text(&upgraded));
    assert_eq!(stop.status.code(), Some(1), "{}", text(&stop));
    assert!(
        text(&stop).contains("the new daemon of an upgrade in progress"),
        "{}",
        text(&stop)
    );
    let new = upgraded_to(&upgraded);
    server.wait_reported(new);
    server.pids.push(new);
    assert!(gone_within(old, Duration::from_secs(5)));
    // The old daemon left its files to the new one: pid file, lock file, status agree, and a second
    // daemon cannot start beside it.
    assert_eq!(server.pid_file_pid(), new);
    assert_running(&server, new);
    let second = launch(server.command(&[]));
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("already running"),
        "{}",
        text(&second)
    );
    only_one_left(&server, new, Duration::from_secs(5));
    assert_eq!(server.ask("after").expect("served"), format!("{new} after"));
}

#[test]
fn a_forged_pid_on_the_channel_is_never_signalled_nor_written() {
    let server = Server::start("upgrade-forged");
    let old = server.pid_file_pid();
    let mut victim = Command::new("sleep").arg("60").spawn().expect("sleep");
    let victim_pid = i32::try_from(victim.id()).expect("pid");
    let mut upgrade = server.command(&["upgrade"]);
    upgrade.env("FX_FORGE_PID", victim_pid.to_string());
    let upgraded = launch(upgrade);
    let said = text(&upgraded);
    assert_eq!(upgraded.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("refusing to act on pid {victim_pid}")),
        "{said}"
    );
    assert!(said.contains(&format!("pid {old} keeps serving")), "{said}");
    assert!(is_alive(victim_pid), "the forged pid was not killed");
    assert_eq!(server.pid_file_pid(), old, "the forged pid was not written");
    assert_running(&server, old);
    // The new daemon, never switched to, ends by itself.
    only_one_left(&server, old, Duration::from_secs(15));
    assert_eq!(server.ask("still").expect("served"), format!("{old} still"));
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn a_daemon_started_with_restart_is_upgraded_and_keeps_its_arguments() {
    let mut server = Server::start_with("upgrade-restart", &["restart", "", "x y"]);
    let old = server.pid_file_pid();
    let upgraded = server.upgrade(&[]);
    assert_eq!(upgraded.status.code(), Some(0), "{}", text(&upgraded));
    let new = server.pid_file_pid();
    assert_ne!(new, old);
    assert!(gone_within(old, Duration::from_secs(5)));
    assert_running(&server, new);
    // `restart` is dropped (the new daemon only starts); the empty argument is kept.
    let cmdline = std::fs::read(format!("/proc/{new}/cmdline")).expect("cmdline");
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).collect();
    assert_eq!(args, [&b""[..], b"x y", b""], "{cmdline:?}");
}

#[test]
fn an_upgrade_killed_half_way_leaves_the_old_daemon_alone() {
    let mut server = Server::start("upgrade-killed");
    let old = server.pid_file_pid();
    let mut upgrade = server.command(&["upgrade"]);
    upgrade
        .env("FX_READY_MS", "1000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut upgrading = upgrade.spawn().expect("upgrade");
    std::thread::sleep(Duration::from_millis(300));
    upgrading.kill().expect("kill upgrade");
    upgrading.wait().expect("reap upgrade");
    // The new daemon gets ready, finds nobody to switch to it, and ends: no second server.
    only_one_left(&server, old, Duration::from_secs(15));
    assert_eq!(server.pid_file_pid(), old);
    assert_running(&server, old);
    assert_eq!(server.ask("alone").expect("served"), format!("{old} alone"));
    let again = server.upgrade(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}
