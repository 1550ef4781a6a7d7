//! Log files on live daemons: reopening after rotation (after chroot and the user switch too), the real
//! logrotate in `create` and `copytruncate` modes with a writer logging all along, and refusals.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{LiveDaemon, TempDir, fixture, scratch, skip, start};
use common::{NOBODY, is_root};

fn privlogs(out: &Path, args: &[&str]) -> Command {
    let mut command = fixture("fx_privlogs", out);
    command.args(args);
    command
}

fn usr1(daemon: &LiveDaemon) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .expect("SIGUSR1");
}

/// Waits until the report at `out` satisfies `done`; returns it.
fn wait_report(out: &Path, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let report = std::fs::read_to_string(out).unwrap_or_default();
        if done(&report) {
            return report;
        }
        assert!(Instant::now() < deadline, "report so far: {report:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A test directory laid out as a chrooted daemon's: `root/logs` (the log directory, owned by `owner`)
/// outside `root/jail` (the chroot, where the daemon cannot reach the logs by path).
fn jail(tag: &str, owner: u32) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(tag);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let logs = dir.join("logs");
    let root = dir.join("jail");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&logs, Some(owner), Some(owner)).unwrap();
    (dir, logs, root)
}

#[test]
fn reopen_after_chroot_and_user_switch_creates_the_file_0640_owned_by_the_user() {
    if !is_root() {
        return skip("chroot and the switch to nobody need root");
    }
    let (_dir, _outside, root) = jail("reopen-jail", NOBODY);
    // Inside the jail: a log directory outside it is not kept (review F12, see below).
    let logs = root.join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::os::unix::fs::chown(&logs, Some(NOBODY), Some(NOBODY)).unwrap();
    // The daemon reports from inside the chroot.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = root.join("report");
    let log = logs.join("app.log");
    let args = [
        "--user",
        "nobody",
        "--chroot",
        root.to_str().unwrap(),
        "--stdout",
        log.to_str().unwrap(),
        "--stderr",
        log.to_str().unwrap(),
        "--then",
        "reopen",
    ];
    let mut command = privlogs(&out, &args);
    command.env("FIXTURE_OUT", "/report");
    let daemon = start(command, &out);
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (NOBODY, NOBODY, 0o640),
        "created at start: given to the daemon's user"
    );
    // As logrotate's `nocreate` leaves it: the file renamed, no new one.
    let rotated = logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(report.ends_with(" reopened 1 ok\n"), "{report}");
    let meta = std::fs::metadata(&log).expect("the daemon created the log file again");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (NOBODY, NOBODY, 0o640)
    );
    assert_eq!(
        read(&log),
        "after reopen 1\n",
        "the new file gets what follows"
    );
    assert_eq!(
        read(&rotated),
        "",
        "the rotated file gets nothing after the reopen"
    );
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
    assert_eq!(
        std::fs::read_link(daemon.proc("root")).unwrap(),
        root,
        "still in the chroot"
    );
}

#[test]
fn reopen_refuses_a_symlink_planted_at_the_path_and_keeps_writing_to_the_old_file() {
    if !is_root() {
        return skip("the switch to nobody needs root");
    }
    let (dir, logs, _root) = jail("reopen-symlink", NOBODY);
    let out = dir.join("report");
    let log = logs.join("app.log");
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    let args = [
        "--user",
        "nobody",
        "--stderr",
        log.to_str().unwrap(),
        "--then",
        "reopen",
    ];
    let daemon = start(privlogs(&out, &args), &out);
    let rotated = logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    // Planted by whoever can write to the log directory (here, the daemon's own user).
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    std::os::unix::fs::lchown(&log, Some(NOBODY), Some(NOBODY)).unwrap();
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(
        report.contains("reopened 1 error: cannot reopen log file")
            && report.contains("it is a symbolic link, which a reopen never follows"),
        "{report}"
    );
    assert_eq!(
        read(&victim),
        "root's file\n",
        "the symlink's target is untouched"
    );
    assert_eq!(
        read(&rotated),
        "after reopen 1\n",
        "stderr still goes to the old file"
    );
}

#[test]
fn reopen_refuses_a_file_of_another_user() {
    if !is_root() {
        return skip("files of another user are made as root");
    }
    let dir = TempDir::new("reopen-owner");
    let out = dir.join("report");
    let log = dir.join("app.log");
    let args = ["--stderr", log.to_str().unwrap(), "--then", "reopen"];
    let daemon = start(privlogs(&out, &args), &out);
    std::fs::rename(&log, dir.join("app.log.1")).unwrap();
    // Another user's file at the path: the root daemon's logs would become readable to them.
    std::fs::write(&log, "").unwrap();
    std::os::unix::fs::chown(&log, Some(NOBODY), Some(NOBODY)).unwrap();
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(report.contains("it belongs to uid 65534"), "{report}");
    assert_eq!(read(&log), "", "nothing written to it");
}

#[test]
fn reopen_without_log_files_does_nothing() {
    let (_dir, out) = scratch("reopen-none");
    let daemon = start(privlogs(&out, &["--then", "reopen"]), &out);
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(report.ends_with(" reopened 1 ok\n"), "{report}");
    let fds = daemon.fds();
    assert!(
        fds.iter()
            .any(|(fd, target)| *fd == 1 && target == "/dev/null"),
        "{fds:?}"
    );
}

/// How many lines the writer logs (one a millisecond, alternately to stdout and stderr).
const LINES: usize = 3000;

/// Runs logrotate on `config` (with its own state file) and returns what it printed.
fn logrotate(dir: &Path, config: &str) -> String {
    let conf = dir.join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();
    let output = Command::new("logrotate")
        .arg("--force")
        .arg("--verbose")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("run logrotate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "logrotate failed: {text}");
    text
}

fn have_logrotate() -> bool {
    Command::new("logrotate").arg("--version").output().is_ok()
}

/// The writer's lines of one stream (`out` has the even numbers, `err` the odd ones) found in `files`,
/// checked: every line whole, each of the stream's numbers exactly once (when `expect_none_lost`) or at
/// most once; returns, per file, the numbers it holds.
fn check_lines(files: &[&Path], stream: &str, expect_none_lost: bool) -> Vec<Vec<usize>> {
    let parity = usize::from(stream == "err");
    let mut seen = vec![0u32; LINES];
    let mut per_file = Vec::new();
    for file in files {
        let text = read(file);
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in a torn line",
            file.display()
        );
        let mut numbers = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let whole = fields.len() == 3
                && matches!(fields[0], "out" | "err")
                && fields[1].len() == 6
                && fields[2] == "x".repeat(60);
            assert!(
                whole,
                "torn or foreign line in {}: {line:?}",
                file.display()
            );
            let n: usize = fields[1].parse().unwrap();
            assert!(
                fields[0] == stream && n % 2 == parity,
                "line {n} in the wrong stream"
            );
            seen[n] += 1;
            numbers.push(n);
        }
        per_file.push(numbers);
    }
    let twice: Vec<usize> = (0..LINES).filter(|n| seen[*n] > 1).collect();
    assert!(twice.is_empty(), "lines in both files or twice: {twice:?}");
    let lost: Vec<usize> = (0..LINES)
        .filter(|n| n % 2 == parity && seen[*n] == 0)
        .collect();
    if expect_none_lost {
        assert!(lost.is_empty(), "lost {} lines: {lost:?}", lost.len());
    } else if let (Some(first), Some(last)) = (lost.first(), lost.last()) {
        // copytruncate without a pause loses what is written between logrotate's copy and its truncate:
        // one run of consecutive lines, nothing else.
        assert_eq!(
            (last - first) / 2 + 1,
            lost.len(),
            "lost lines are not one run: {lost:?}"
        );
        println!(
            "copytruncate without a pause lost {} lines: {lost:?}",
            lost.len()
        );
    }
    per_file
}

/// Starts the writer as nobody with stdout in `out.log` and stderr in `err.log`, waits until it has
/// logged some lines, and returns it with the paths.
fn start_writer(dir: &TempDir, signal: &str) -> (LiveDaemon, PathBuf, PathBuf, PathBuf) {
    let out = dir.join("report");
    let logs = dir.join("logs");
    let (stdout, stderr) = (logs.join("out.log"), logs.join("err.log"));
    let args = [
        "--user",
        "nobody",
        "--stdout",
        stdout.to_str().unwrap(),
        "--stderr",
        stderr.to_str().unwrap(),
        "--reopen-on",
        signal,
        "--then",
        "log",
        &LINES.to_string(),
    ];
    let daemon = start(privlogs(&out, &args), &out);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&stderr).map_or(0, |m| m.len()) < 20 * 72 {
        assert!(Instant::now() < deadline, "the writer does not write");
        std::thread::sleep(Duration::from_millis(5));
    }
    (daemon, out, stdout, stderr)
}

fn log_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    // The writer reports here as nobody.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::fs::set_permissions(dir.join("logs"), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn logrotate_create_mode_with_a_continuous_writer_loses_and_tears_nothing() {
    if !is_root() {
        return skip("the writer runs as nobody and logrotate as root");
    }
    if !have_logrotate() {
        return skip("logrotate is not installed (.ci/run installs it)");
    }
    let dir = log_dir("logrotate-create");
    // The runtime reopens the files itself: `reopen_logs_on`, here SIGHUP as logrotate configs often send.
    let (daemon, out, stdout, stderr) = start_writer(&dir, "SIGHUP");
    let config = format!(
        "{} {} {{\n    rotate 1\n    create 0640 nobody nogroup\n    sharedscripts\n    postrotate\n        \
         kill -HUP {}\n    endscript\n}}\n",
        stdout.display(),
        stderr.display(),
        daemon.pid
    );
    let said = logrotate(dir.path(), &config);
    wait_report(&out, Duration::from_secs(30), |r| r.ends_with(" done\n"));
    assert!(daemon.alive());
    for (path, stream) in [(&stdout, "out"), (&stderr, "err")] {
        let rotated = PathBuf::from(format!("{}.1", path.display()));
        let per_file = check_lines(&[&rotated, path], stream, true);
        let (old, new) = (&per_file[0], &per_file[1]);
        assert!(!old.is_empty() && !new.is_empty(), "{said}");
        assert!(
            old.iter().max() < new.iter().min(),
            "every line before the reopen is in the rotated file, every line after in the new one"
        );
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (NOBODY, 0o640));
    }
}

#[test]
fn logrotate_copytruncate_paused_loses_and_tears_nothing() {
    if !is_root() {
        return skip("the writer runs as nobody and logrotate as root");
    }
    if !have_logrotate() {
        return skip("logrotate is not installed (.ci/run installs it)");
    }
    let dir = log_dir("logrotate-copytruncate");
    let (daemon, out, stdout, stderr) = start_writer(&dir, "SIGUSR1");
    // The recipe the README gives: the daemon is stopped between logrotate's copy and its truncate.
    let config = format!(
        "{} {} {{\n    rotate 1\n    copytruncate\n    sharedscripts\n    prerotate\n        kill -STOP {pid}\n    \
         endscript\n    postrotate\n        kill -CONT {pid}\n    endscript\n}}\n",
        stdout.display(),
        stderr.display(),
        pid = daemon.pid
    );
    logrotate(dir.path(), &config);
    wait_report(&out, Duration::from_secs(30), |r| r.ends_with(" done\n"));
    for (path, stream) in [(&stdout, "out"), (&stderr, "err")] {
        let rotated = PathBuf::from(format!("{}.1", path.display()));
        let per_file = check_lines(&[&rotated, path], stream, true);
        assert!(per_file[0].iter().max() < per_file[1].iter().min());
        assert!(
            !per_file[1].is_empty(),
            "the daemon kept writing to the truncated file"
        );
    }
}

#[test]
fn logrotate_copytruncate_unpaused_tears_and_duplicates_nothing() {
    if !is_root() {
        return skip("the writer runs as nobody and logrotate as root");
    }
    if !have_logrotate() {
        return skip("logrotate is not installed (.ci/run installs it)");
    }
    let dir = log_dir("logrotate-copytruncate-plain");
    let (_daemon, out, stdout, stderr) = start_writer(&dir, "SIGUSR1");
    let config = format!(
        "{} {} {{\n    rotate 1\n    copytruncate\n}}\n",
        stdout.display(),
        stderr.display()
    );
    logrotate(dir.path(), &config);
    wait_report(&out, Duration::from_secs(30), |r| r.ends_with(" done\n"));
    for (path, stream) in [(&stdout, "out"), (&stderr, "err")] {
        let rotated = PathBuf::from(format!("{}.1", path.display()));
        // O_APPEND: after the truncate the daemon writes at the new end, so no hole of NUL bytes.
        let per_file = check_lines(&[&rotated, path], stream, false);
        assert!(!per_file[1].is_empty());
    }
}

#[test]
fn reopen_logs_on_reports_a_refusal_on_stderr_and_keeps_the_old_file() {
    if !is_root() {
        return skip("the switch to nobody needs root");
    }
    let (dir, logs, _root) = jail("reopen-on-symlink", NOBODY);
    let out = dir.join("report");
    let log = logs.join("app.log");
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    let args = [
        "--user",
        "nobody",
        "--stderr",
        log.to_str().unwrap(),
        "--reopen-on",
        "SIGUSR1",
    ];
    let daemon = start(privlogs(&out, &args), &out);
    let rotated = logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    usr1(&daemon);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read(&rotated).ends_with('\n') {
        assert!(Instant::now() < deadline, "no line in the old file");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        read(&rotated),
        format!(
            "fx_privlogs: cannot reopen log file {}: it is a symbolic link, which a reopen never follows\n",
            log.display()
        )
    );
    assert_eq!(read(&victim), "root's file\n");
    assert!(daemon.alive(), "SIGUSR1 no longer ends the daemon");
}

#[test]
fn reopen_logs_on_refuses_a_terminating_signal() {
    let (_dir, out) = scratch("reopen-on-term");
    let output = common::launch(privlogs(&out, &["--reopen-on", "SIGTERM"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        common::stderr_text(&output),
        "fx_privlogs: invalid daemon configuration: reopen_logs_on takes SIGHUP, SIGUSR1 or SIGUSR2, not \
         SIGTERM\n"
    );
}

#[test]
fn a_root_start_refuses_a_log_symlink_the_daemons_user_planted() {
    if !is_root() {
        return skip("the attack is on a start as root");
    }
    // The log directory belongs to the daemon's user (as logrotate's `su` wants it); a compromised
    // daemon plants `app.log -> victim` for the next start as root.
    let (dir, logs, _root) = jail("planted-link", NOBODY);
    let out = dir.join("report");
    let log = logs.join("app.log");
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    std::os::unix::fs::lchown(&log, Some(NOBODY), Some(NOBODY)).unwrap();
    let output = common::launch(privlogs(
        &out,
        &["--user", "nobody", "--stderr", log.to_str().unwrap()],
    ));
    assert_eq!(output.status.code(), Some(1));
    let stderr = common::stderr_text(&output);
    assert!(
        stderr.contains("is a symbolic link owned by uid 65534")
            && stderr.contains("following it as root would let that user choose the file written"),
        "{stderr}"
    );
    assert_eq!(read(&victim), "root's file\n", "the target is untouched");
    assert!(!out.exists(), "the body never ran");
    // A link root made there is the administrator's choice: followed.
    std::os::unix::fs::lchown(&log, Some(0), Some(0)).unwrap();
    let _daemon = start(
        privlogs(
            &out,
            &["--user", "nobody", "--stderr", log.to_str().unwrap()],
        ),
        &out,
    );
}

/// The directories the daemon holds open (`O_PATH` included), as their paths.
fn dir_fds(daemon: &LiveDaemon) -> Vec<PathBuf> {
    daemon
        .fds()
        .into_iter()
        .filter(|(fd, _)| {
            std::fs::metadata(daemon.proc(&format!("fd/{fd}"))).is_ok_and(|m| m.is_dir())
        })
        .map(|(_, target)| PathBuf::from(target))
        .collect()
}

/// Review F12: a log directory outside the chroot is not kept open (its fd would be a way out of the
/// jail): a reopen of that file is refused, and with `reopen_logs_on` the start fails, leaving no file.
#[test]
fn chroot_keeps_no_log_directory_outside_the_jail() {
    if !is_root() {
        return skip("chroot needs root");
    }
    let (_dir, logs, root) = jail("jail-escape", NOBODY);
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = root.join("report");
    let log = logs.join("app.log");
    let mut args = vec![
        "--user",
        "nobody",
        "--chroot",
        root.to_str().unwrap(),
        "--stderr",
        log.to_str().unwrap(),
        "--then",
        "reopen",
    ];
    let mut command = privlogs(&out, &args);
    command.env("FIXTURE_OUT", "/report");
    let daemon = start(command, &out);
    let dirs = dir_fds(&daemon);
    assert!(
        dirs.iter().all(|d| !d.starts_with(&logs)),
        "a directory outside the jail is open in the daemon: {dirs:?}"
    );
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(
        report.contains("reopened 1 error: cannot reopen log file")
            && report.contains("outside the chroot"),
        "{report}"
    );
    assert_eq!(read(&log), "after reopen 1\n", "stderr stays on the file");
    drop(daemon);
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&out).unwrap();
    // Asked to reopen on a signal, the start fails now rather than at the first rotation.
    args.splice(0..0, ["--reopen-on", "SIGUSR1"]);
    let mut command = privlogs(&out, &args);
    command.env("FIXTURE_OUT", "/report");
    let output = common::launch(command);
    let stderr = common::stderr_text(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("outside the chroot"), "{stderr}");
    assert!(
        !log.exists(),
        "the log file the failed start created is removed"
    );
}

/// Review F14 (and the pinning of F4): a log path that is a legitimate symlink reopens where the walk
/// of the path led at start.
#[test]
fn a_symlinked_log_path_reopens_where_it_led() {
    let dir = TempDir::new("reopen-symlinked");
    let out = dir.join("report");
    let real = dir.join("real.log");
    let log = dir.join("app.log");
    std::fs::write(&real, "").unwrap();
    std::os::unix::fs::symlink("real.log", &log).unwrap();
    let args = ["--stderr", log.to_str().unwrap(), "--then", "reopen"];
    let daemon = start(privlogs(&out, &args), &out);
    std::fs::rename(&real, dir.join("real.log.1")).unwrap();
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(report.ends_with(" reopened 1 ok\n"), "{report}");
    assert_eq!(read(&real), "after reopen 1\n");
}

/// Review F4: the directory a reopen writes into is the one the checked walk of the path ended in, not
/// the path resolved again later. A root-owned symlink component flips between two directories while
/// daemons start; each daemon's kept directory must be the one its log file is in.
#[test]
fn the_reopen_directory_is_the_one_the_start_opened_the_file_in() {
    if !is_root() {
        return skip("the daemon's user switch needs root");
    }
    let dir = TempDir::new("reopen-flip");
    // The daemon (nobody) writes its report there.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    let current = dir.join("cur");
    std::os::unix::fs::symlink("a", &current).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Stopped and joined when the test ends, failed or not, before the directory is removed (a
    // flipper still running made the removal fail and left the directory behind).
    let flipper = Flipper(stop.clone(), {
        let (stop, current, next) = (stop.clone(), current.clone(), dir.join("next"));
        Some(std::thread::spawn(move || {
            for target in ["b", "a"].iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let _ = std::fs::remove_file(&next);
                std::os::unix::fs::symlink(target, &next).unwrap();
                std::fs::rename(&next, &current).unwrap();
            }
        }))
    });
    let log = current.join("app.log");
    // Pid files go in a directory only root may write: the start refuses the world-writable one.
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pid_file = run.join("app.pid");
    let mut mismatch = None;
    for round in 0..30 {
        let out = dir.join(&format!("report{round}"));
        let args = [
            "--user",
            "nobody",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--stderr",
            log.to_str().unwrap(),
        ];
        let daemon = start(privlogs(&out, &args), &out);
        let file = std::fs::read_link(daemon.proc("fd/2")).unwrap();
        let kept: Vec<PathBuf> = dir_fds(&daemon)
            .into_iter()
            .filter(|d| *d == dir.join("a") || *d == dir.join("b"))
            .collect();
        if kept != [file.parent().unwrap()] {
            mismatch = Some((round, file, kept));
            break;
        }
    }
    drop(flipper);
    assert_eq!(mismatch, None, "(round, log file, kept directories)");
}

/// A thread flipping a symlink, and the flag that stops it: stopped and joined when dropped.
struct Flipper(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for Flipper {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.1.take() {
            let _ = thread.join();
        }
    }
}

/// Review F5: a log file with another hard link is refused, at start and on reopen (where
/// `fs.protected_hardlinks` is off, anyone who may write the directory could link /etc/shadow there).
#[test]
fn a_log_file_with_several_hard_links_is_refused() {
    let dir = TempDir::new("log-links");
    let out = dir.join("report");
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    let log = dir.join("app.log");
    std::fs::hard_link(&victim, &log).unwrap();
    let args = ["--stderr", log.to_str().unwrap(), "--then", "reopen"];
    let output = common::launch(privlogs(&out, &args));
    let stderr = common::stderr_text(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("2 hard links"), "{stderr}");
    assert_eq!(read(&victim), "root's file\n");
    // On reopen: the start's file rotated away, a link planted in its place.
    std::fs::remove_file(&log).unwrap();
    let daemon = start(privlogs(&out, &args), &out);
    std::fs::rename(&log, dir.join("app.log.1")).unwrap();
    std::fs::hard_link(&victim, &log).unwrap();
    usr1(&daemon);
    let report = wait_report(&out, Duration::from_secs(10), |r| r.contains("reopened 1"));
    assert!(report.contains("more than one hard link"), "{report}");
    assert_eq!(read(&victim), "root's file\n");
}

/// Review F15: a start that fails after the log files were opened removes those it created, and keeps
/// those that were there.
#[test]
fn a_failed_start_removes_the_log_files_it_created() {
    let dir = TempDir::new("log-failed-start");
    let out = dir.join("report");
    let created = dir.join("new.log");
    let existing = dir.join("old.log");
    std::fs::write(&existing, "kept\n").unwrap();
    let args = [
        "--stdout",
        existing.to_str().unwrap(),
        "--stderr",
        created.to_str().unwrap(),
        "--workdir",
        "/nonexistent",
    ];
    let output = common::launch(privlogs(&out, &args));
    let stderr = common::stderr_text(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
    assert!(!created.exists(), "the log file this start created is gone");
    assert_eq!(read(&existing), "kept\n");
}

/// Review F10: whether the start created the log file (and gives it to the daemon's user) is decided by
/// the open itself. A root file hard-linked at the path and unlinked again in a loop, while daemons
/// start, is never handed to the daemon's user.
#[test]
fn a_raced_hard_link_at_the_log_path_is_never_given_to_the_daemon_user() {
    if !is_root() {
        return skip("the user switch needs root");
    }
    let dir = TempDir::new("log-link-race");
    // The daemon (nobody) writes its report there; the log directory is root's.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("app.log");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let linker = {
        let (stop, victim, log) = (stop.clone(), victim.clone(), log.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::hard_link(&victim, &log);
                let _ = std::fs::remove_file(&log);
            }
        })
    };
    let mut given = None;
    for round in 0..150 {
        let out = dir.join(&format!("report{round}"));
        let args = ["--user", "nobody", "--stderr", log.to_str().unwrap()];
        let (output, _) = common::launch_with_pid(privlogs(&out, &args));
        if output.status.success() {
            drop(LiveDaemon::new(report_pid(&out)));
        }
        if std::fs::metadata(&victim).unwrap().uid() != 0 {
            given = Some(round);
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    linker.join().unwrap();
    assert_eq!(
        given, None,
        "the root file was given to nobody at this round"
    );
}

fn report_pid(out: &Path) -> i32 {
    let report = wait_report(out, Duration::from_secs(10), |r| r.contains('\n'));
    report.split_whitespace().next().unwrap().parse().unwrap()
}

/// A `stdout` or `stderr` key applies in every mode: in the foreground (`DAEMON_FOREGROUND=1`, and under
/// a notify socket, systemd's `Type=notify`) the configured files replace fds 1 and 2 as in fork mode,
/// while stdin, and a stream without a file, stay as they were.
#[test]
fn log_files_apply_in_the_foreground_too() {
    use std::io::Read;
    for mode in ["DAEMON_FOREGROUND=1", "NOTIFY_SOCKET"] {
        let dir = TempDir::new("fg-logs");
        let out = dir.join("report");
        let (stdout_log, stderr_log) = (dir.join("out.log"), dir.join("err.log"));
        let notify = dir.join("notify.sock");
        let _socket = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
        let mut command = fixture("fx_builder", &out);
        command.args(["--stdout", stdout_log.to_str().unwrap()]);
        command.args(["--stderr", stderr_log.to_str().unwrap(), "--then", "print"]);
        match mode {
            "NOTIFY_SOCKET" => command.env("NOTIFY_SOCKET", &notify),
            _ => command.env("DAEMON_FOREGROUND", "1"),
        };
        let child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = common::ChildGuard(child);
        let pid = report_pid(&out);
        assert_eq!(pid, child.0.id() as i32, "{mode}: in the foreground");
        let daemon = LiveDaemon::new(pid);
        let fds = daemon.fds();
        assert_eq!(fds[1], (1, stdout_log.display().to_string()), "{mode}");
        assert_eq!(fds[2], (2, stderr_log.display().to_string()), "{mode}");
        assert_eq!(
            fds[0].1, "/dev/null",
            "{mode}: stdin is the test's, as given"
        );
        assert_eq!(
            read(&stdout_log),
            format!("stdout line from {pid}\n"),
            "{mode}"
        );
        assert_eq!(
            read(&stderr_log),
            format!("stderr line from {pid}\n"),
            "{mode}"
        );
        drop(daemon);
        let mut printed = String::new();
        child
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut printed)
            .unwrap();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut printed)
            .unwrap();
        assert_eq!(printed, "", "{mode}: nothing reached the launcher's stdio");
    }
}
