//! `stdout`/`stderr` on syslog, against the real rsyslogd (Debian's `rsyslog`), listening on a `/dev/log`
//! of a private mount namespace (a tmpfs over /dev there, with the null and random devices bound back),
//! so that the host's syslog, if any, is neither used nor disturbed; and the refusals of a missing or
//! refusing socket, for the journal and syslog alike. The journal itself is tested under a booted systemd
//! in journal.rs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{exe, is_root, scratch, skip, stderr_text};

/// rsyslogd's configuration: `/dev/log` without rate limiting, every message to `out.log` as
/// `FACILITY.SEVERITY PROGRAM[PID]: MESSAGE`.
const RSYSLOG_CONF: &str = r#"
global(workDirectory="DIR")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
template(name="t" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname%[%procid%]:%msg%\n")
:programname, isequal, "fx_sink" action(type="omfile" file="DIR/out.log" template="t")
"#;

/// The namespace's set-up (its first argument is the scratch directory): /dev becomes a tmpfs with
/// null, zero, random, urandom and full bound from the real one, and `syslog` starts rsyslogd on its
/// `/dev/log`.
const SETUP: &str = r#"
set -e
dir=$1; shift
mkdir -p "$dir/olddev"
mount --rbind /dev "$dir/olddev"
mount -t tmpfs -o mode=0755 devs /dev
for d in null zero random urandom full; do touch /dev/$d; mount --bind "$dir/olddev/$d" /dev/$d; done
umount -l "$dir/olddev"
syslog() {
    rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" & r=$!
    for i in $(seq 200); do [ -S /dev/log ] && return; sleep 0.05; done
    echo "rsyslogd did not start" >&2; exit 97
}
stop_syslog() { kill $r; wait $r || true; }
trap 'kill $r 2>/dev/null || true' EXIT
# The daemon's pid, kept in $dir/pid: from its pid file (written before it is ready, outside any
# chroot; removed when the daemon exits), or from its report (written right after its start, for a
# daemon that is already gone).
started() {
    for i in $(seq 100); do
        for f in "$dir/app.pid" "$dir/report"; do
            cat "$f" 2>/dev/null > "$dir/pid" && [ -s "$dir/pid" ] && return
        done
        sleep 0.05
    done
    echo "no pid" >&2; exit 96
}
daemon_gone() {
    pid=$(cat "$dir/pid")
    for i in $(seq 400); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -9 "$pid"; echo "the daemon did not end" >&2; exit 98
}
# Waits until out.log has a line with $1 (the relay delivers after the daemon's end).
logged() { for i in $(seq 100); do grep -qF -- "$1" "$dir/out.log" 2>/dev/null && return; sleep 0.05; done; }
# The daemon's processes by name, in this mount namespace: pid, uid, parent, and the owner of
# /proc/PID/environ (root when the process is not dumpable).
processes() {
    ns=$(readlink /proc/self/ns/mnt)
    for p in /proc/[0-9]*; do
        [ "$(cat $p/comm 2>/dev/null)" = fx_sink ] || continue
        [ "$(readlink $p/ns/mnt)" = "$ns" ] || continue
        echo "${p#/proc/} $(awk '/^Uid:/{print $2}' $p/status) $(awk '{print $4}' $p/stat) $(stat -c %u $p/environ)"
    done > "$dir/processes"
}
"#;

fn rsyslogd() -> Option<&'static str> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|path| Path::new(path).exists())
}

/// Runs `script` after [`SETUP`] in a private mount namespace, with `dir` prepared for rsyslogd, and the
/// fixture's command line as `"$@"`.
fn in_namespace(dir: &Path, script: &str, fixture_args: &[&str]) -> std::process::Output {
    std::fs::write(
        dir.join("rsyslog.conf"),
        RSYSLOG_CONF.replace("DIR", &dir.display().to_string()),
    )
    .unwrap();
    let output = Command::new("timeout")
        .args([
            "60",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(format!("{SETUP}\n{script}"))
        .arg("sh")
        .arg(dir)
        .arg(exe("fx_sink"))
        .args(fixture_args)
        .arg("--pid-file")
        .arg(dir.join("app.pid"))
        .env("FIXTURE_OUT", dir.join("report"))
        .env("FIXTURE_LIFE", "30")
        .env("RUST_BACKTRACE", "0")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DAEMON_FOREGROUND")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert!(
        output.status.success(),
        "{script}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr_text(&output)
    );
    output
}

fn can_run() -> bool {
    if !is_root() {
        skip("needs root for a private mount namespace with its own /dev/log");
        return false;
    }
    if rsyslogd().is_none() {
        skip("rsyslogd is not installed (package rsyslog; .ci/run installs it)");
        return false;
    }
    true
}

/// The shape users write first: `stdout = "syslog:local3", stderr = "syslog"`, forked. Each line arrives
/// at its facility, with the severity of its stream or of its `<N>` prefix, tagged `fx_sink[PID]` with
/// the daemon's pid; a worker forked without exec, a child process and the panic that ends the daemon
/// land there too (the relay outlives the daemon's last write).
#[test]
fn syslog_lines_arrive_with_facility_name_pid_and_level() {
    if !can_run() {
        return;
    }
    let (dir, _) = scratch("sink-syslog");
    let output = in_namespace(
        dir.path(),
        r#"syslog; "$@"; started; daemon_gone; logged "fixture panic"; stop_syslog"#,
        &[
            "--stdout",
            "syslog:local3",
            "--stderr",
            "syslog",
            "--child",
            "--then",
            "panic",
        ],
    );
    assert_eq!(stderr_text(&output), "", "the launcher said nothing");
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let pid = pid.trim();
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let tag = format!("fx_sink[{pid}]: ");
    let find = |wanted: &str| lines.iter().position(|l| *l == wanted);
    let expect = |level: &str, message: &str| {
        let wanted = format!("{level} {tag}{message}");
        find(&wanted).unwrap_or_else(|| panic!("no {wanted:?} in\n{log}"))
    };
    let stdout_lines = [
        expect("local3.info", "plain stdout line"),
        expect("local3.debug", "debug line"),
    ];
    assert!(stdout_lines.is_sorted(), "{log}");
    let worker = lines
        .iter()
        .find(|l| l.starts_with(&format!("daemon.err {tag}worker line from ")))
        .unwrap_or_else(|| panic!("no worker line in\n{log}"));
    let stderr_lines = [
        expect("daemon.err", "error line"),
        expect("daemon.warning", "warning line"),
        expect("daemon.err", "plain stderr line"),
        find(worker).unwrap(),
        expect("daemon.err", "child line"),
        expect("daemon.notice", "done"),
        lines
            .iter()
            .position(|l| {
                l.starts_with(&format!(
                    "daemon.err {tag}thread 'main' ({pid}) panicked at "
                ))
            })
            .unwrap_or_else(|| panic!("no panic line in\n{log}")),
        expect("daemon.err", "fixture panic"),
    ];
    assert!(
        stderr_lines.is_sorted(),
        "stderr's lines out of order:\n{log}"
    );
    assert_ne!(worker, &format!("daemon.err {tag}worker line from {pid}"));
}

/// rsyslogd restarted mid-stream: the daemon (chrooted, as nobody) keeps writing and running, the relay
/// connects to the new `/dev/log` and logging resumes; lines queued meanwhile arrive, in order, and
/// only lines already in the old socket's queue when rsyslogd stopped may be lost (said in a notice if
/// the relay dropped any). The relay runs as nobody, not dumpable, and is not the daemon's child.
#[test]
fn syslog_survives_a_restart_of_rsyslogd() {
    if !can_run() {
        return;
    }
    let (dir, _) = scratch("sink-restart");
    let jail = dir.join("jail");
    std::fs::create_dir(&jail).unwrap();
    let jail_arg = jail.display().to_string();
    let output = in_namespace(
        dir.path(),
        r#"syslog; "$@"; started; processes; sleep 1; stop_syslog; sleep 1
kill -0 "$(cat "$dir/pid")" && echo "alive while syslog was down"
syslog; daemon_gone; logged "done"; stop_syslog"#,
        &[
            "--stderr",
            "syslog",
            "--chroot",
            &jail_arg,
            "--user",
            "nobody",
            "--lines",
            "300",
            "--interval-ms",
            "10",
            "--then",
            "exit",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "alive while syslog was down\n"
    );
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap();
    let numbers: Vec<u32> = log
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("daemon.info fx_sink[{pid}]: line ")))
        .filter_map(|l| l.strip_suffix(" of 300")?.parse().ok())
        .collect();
    assert!(numbers.is_sorted(), "{numbers:?}");
    // The last third was written well after the restart: every line of it arrived.
    assert!(
        (200..=300).all(|n| numbers.contains(&n)),
        "lines missing after the restart: {numbers:?}"
    );
    // The lines written while syslog was down were queued, not lost: at most the few that were in the
    // old socket's queue when rsyslogd stopped are missing.
    let missing = 300 - numbers.len();
    assert!(missing <= 20, "{missing} lines lost: {numbers:?}");
    assert!(log.contains(&format!("daemon.notice fx_sink[{pid}]: done")));
    // Two processes of that name: the daemon and the relay, both nobody; the relay is not the daemon's
    // child and its /proc files are root's (not dumpable).
    let processes = std::fs::read_to_string(dir.join("processes")).unwrap();
    let rows: Vec<Vec<i32>> = processes
        .lines()
        .map(|l| l.split(' ').map(|f| f.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{processes}");
    let relay = rows.iter().find(|r| r[0] != pid).expect("the relay");
    let daemon = rows.iter().find(|r| r[0] == pid).expect("the daemon");
    assert_eq!(daemon[1], 65534, "{processes}");
    assert_eq!(relay[1], 65534, "{processes}");
    assert_ne!(
        relay[2], pid,
        "the relay is the daemon's child: {processes}"
    );
    assert_eq!(relay[3], 0, "the relay is dumpable: {processes}");
}

/// syslog down while the daemon writes 20,001 lines: the daemon is never held up (it writes them all
/// and ends while rsyslogd is still stopped), the relay keeps the latest 16,384, and once rsyslogd is
/// back it says how many it dropped (the oldest), then sends the rest in order.
#[test]
fn syslog_down_drops_the_oldest_lines_and_counts_them_without_blocking() {
    if !can_run() {
        return;
    }
    let (dir, _) = scratch("sink-drop");
    let go = dir.join("go");
    let go_arg = go.display().to_string();
    in_namespace(
        dir.path(),
        r#"syslog; "$@"; started; logged "worker line from"; stop_syslog; touch "$dir/go"
daemon_gone; echo ended > "$dir/ended"; syslog; logged "done"; stop_syslog"#,
        &[
            "--stderr",
            "syslog",
            "--wait-for",
            &go_arg,
            "--lines",
            "20000",
            "--interval-ms",
            "0",
            "--then",
            "exit",
        ],
    );
    // daemon_gone returned: the daemon wrote every line and exited with syslog down.
    assert!(dir.join("ended").exists());
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let pid = pid.trim();
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap();
    let after: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("lines were dropped"))
        .collect();
    // 20,000 lines and `done` while syslog was down; the queue holds 16,384 of them.
    assert_eq!(
        after.first().copied(),
        Some(
            format!(
                "daemon.warning fx_sink[{pid}]: 3617 lines were dropped while syslog at /dev/log was unreachable or too slow"
            )
            .as_str()
        ),
        "{}",
        &log[..log.len().min(2000)]
    );
    let numbers: Vec<u32> = after
        .iter()
        .filter_map(|l| l.strip_prefix(&format!("daemon.info fx_sink[{pid}]: line ")))
        .filter_map(|l| l.strip_suffix(" of 20000")?.parse().ok())
        .collect();
    assert_eq!(numbers, (3618..=20000).collect::<Vec<u32>>());
    assert_eq!(
        after.last().copied(),
        Some(format!("daemon.notice fx_sink[{pid}]: done").as_str())
    );
}

/// A syslog that is stopped (`SIGSTOP`: its socket stays, full) loses lines too, and says how many once it
/// reads again: the count and the lines received account for every line.
#[test]
fn a_stopped_syslog_drops_lines_and_says_how_many_once_it_reads_again() {
    if !can_run() {
        return;
    }
    let (dir, _) = scratch("sink-stopped");
    let go = dir.join("go");
    let go_arg = go.display().to_string();
    in_namespace(
        dir.path(),
        r#"syslog; "$@"; started; logged "plain stderr line"; kill -STOP $r; touch "$dir/go"
daemon_gone; kill -CONT $r; logged "done"; stop_syslog"#,
        &[
            "--stderr",
            "syslog",
            "--wait-for",
            &go_arg,
            "--lines",
            "30000",
            "--interval-ms",
            "0",
            "--then",
            "exit",
        ],
    );
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let pid = pid.trim();
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap();
    let dropped: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&format!("daemon.warning fx_sink[{pid}]: "))?
                .strip_suffix(
                    " lines were dropped while syslog at /dev/log was unreachable or too slow",
                )?
                .parse()
                .ok()
        })
        .collect();
    let received = log
        .lines()
        .filter(|l| l.starts_with(&format!("daemon.info fx_sink[{pid}]: line ")))
        .count();
    assert!(
        !dropped.is_empty(),
        "no notice: {}",
        &log[..log.len().min(2000)]
    );
    assert!(log.contains(&format!("daemon.notice fx_sink[{pid}]: done")));
    // Every line is either received or counted (the worker's line and `done` were received).
    assert_eq!(
        received as u64 + dropped.iter().sum::<u64>(),
        30000,
        "{dropped:?}"
    );
}

/// A line longer than a datagram goes in pieces that each fit rsyslog's 8 KiB, none cut, whether it came
/// whole or its end came late; the late end is text at the first piece's level, even where it starts
/// like a prefix (`<0>`: no emergency from the middle of a line).
#[test]
fn long_lines_arrive_whole_in_pieces_at_their_first_pieces_level() {
    if !can_run() {
        return;
    }
    let (dir, _) = scratch("sink-long");
    in_namespace(
        dir.path(),
        r#"syslog; "$@"; started; logged "EMERG tail"; logged "done"; stop_syslog"#,
        &[
            "--stderr", "syslog", "--long", "30000", "--split", "8200", "--then", "exit",
        ],
    );
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let pid = pid.trim();
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap();
    let prefix = format!("daemon.info fx_sink[{pid}]: ");
    let long: String = log
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|m| m.starts_with("long ") || m.starts_with('L'))
        .collect();
    assert_eq!(long, format!("long {} END", "L".repeat(30000)));
    let err = format!("daemon.err fx_sink[{pid}]: ");
    let split: String = log
        .lines()
        .filter_map(|l| l.strip_prefix(&err))
        .filter(|m| m.starts_with('S') || m.starts_with("<0>"))
        .collect();
    assert_eq!(split, format!("{}<0>EMERG tail", "S".repeat(8200)));
    assert!(
        !log.contains("daemon.emerg"),
        "{}",
        &log[..log.len().min(2000)]
    );
}

/// In the foreground, a start that fails after stderr went to syslog (or to a log file) still says why
/// on the stderr it was started with: a second instance's "already running" reaches the terminal.
#[test]
fn a_foreground_start_that_fails_after_the_sink_says_why_on_its_own_stderr() {
    if !can_run() {
        return;
    }
    for stderr in ["syslog", "FILE"] {
        let (dir, _) = scratch("sink-fg-fail");
        let target = dir.join("err.log").display().to_string();
        let stderr = if stderr == "FILE" {
            target.as_str()
        } else {
            stderr
        };
        in_namespace(
            dir.path(),
            r#"syslog; "$@" & first=$!; started
"$@" 2> "$dir/second.err" || echo $? > "$dir/second.rc"
kill $first; wait $first || true; stop_syslog"#,
            &["--foreground", "--stderr", stderr],
        );
        let said = std::fs::read_to_string(dir.join("second.err")).unwrap();
        let rc = std::fs::read_to_string(dir.join("second.rc")).unwrap_or_default();
        assert_eq!(rc.trim(), "1", "{stderr}: {said}");
        assert!(
            said.starts_with("fx_sink: already running (pid "),
            "{stderr}: {said:?}"
        );
    }
}

/// A socket that is missing, or that refuses the connection, fails the start with the stream, the sink
/// and the socket named (never a silent /dev/null), exit 1, and leaves no log file behind.
#[test]
fn a_missing_or_refusing_socket_fails_the_start() {
    if !is_root() {
        skip("needs root for a private mount namespace that hides or replaces the sockets");
        return;
    }
    let (dir, _) = scratch("sink-refused");
    // A socket file nobody listens on any more: connecting to it is refused.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let file = dir.join("out.log");
    let file_arg = file.display().to_string();
    let stale_arg = stale.display().to_string();
    let hide_run = "mount -t tmpfs runs /run; mkdir -p /run/systemd/journal";
    let cases = [
        (
            format!("{hide_run}; \"$@\""),
            "journal",
            "fx_sink: cannot connect stderr to the journal at /run/systemd/journal/stdout: No such file or directory (os error 2)\n",
        ),
        (
            format!(
                "{hide_run}; touch /run/systemd/journal/stdout; mount --bind {stale_arg} /run/systemd/journal/stdout; \"$@\""
            ),
            "journal",
            "fx_sink: cannot connect stderr to the journal at /run/systemd/journal/stdout: Connection refused (os error 111)\n",
        ),
        (
            "\"$@\"".to_string(),
            "syslog",
            "fx_sink: cannot connect stderr to syslog at /dev/log: No such file or directory (os error 2)\n",
        ),
        (
            format!("touch /dev/log; mount --bind {stale_arg} /dev/log; \"$@\""),
            "syslog:local0",
            "fx_sink: cannot connect stderr to syslog at /dev/log: Connection refused (os error 111)\n",
        ),
    ];
    for (script, sink, sentence) in cases {
        let output = Command::new("timeout")
            .args([
                "60",
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
            ])
            .arg(format!("{SETUP}\n{script}"))
            .arg("sh")
            .arg(dir.path())
            .arg(exe("fx_sink"))
            .args(["--stdout", &file_arg, "--stderr", sink])
            .env("FIXTURE_OUT", dir.join("report"))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("DAEMON_FOREGROUND")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(stderr_text(&output), sentence, "{script}");
        assert_eq!(output.status.code(), Some(1), "{script}");
        assert!(!file.exists(), "the failed start left {}", file.display());
        assert!(!dir.join("report").exists(), "the body ran");
    }
}

/// From the builder, a string that is neither an absolute path nor a sink is refused by `start` as the
/// attribute refuses it at compile time, with a did-you-mean for a near miss.
#[test]
fn a_misspelt_sink_is_refused_at_start() {
    let (_dir, out) = scratch("sink-misspelt");
    let output = common::launch({
        let mut command = common::fixture("fx_sink", &out);
        command.args(["--stderr", "jurnal"]);
        command
    });
    assert_eq!(
        stderr_text(&output),
        "fx_sink: invalid daemon configuration: stderr jurnal is neither an absolute path nor a sink (did \
         you mean \"journal\"?): give an absolute path (a relative one would be taken from the launcher's \
         directory, not the daemon's), \"journal\", \"syslog\" or \"syslog:FACILITY\"\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!out.exists());
}

/// `reopen-logs` leaves the sockets alone and says so: with no log file at all it exits 0 at once,
/// without signalling anything.
#[test]
fn reopen_logs_leaves_sinks_alone_and_says_so() {
    let (dir, out) = scratch("sink-reopen");
    let pid_file = dir.join("app.pid").display().to_string();
    let mut command = common::fixture("fx_sink", &out);
    command.args([
        "reopen-logs",
        "--pid-file",
        &pid_file,
        "--stdout",
        "journal",
        "--stderr",
        "syslog:local0",
    ]);
    let output = common::launch(command);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        "nothing to reopen: stdout goes to the journal and stderr goes to syslog (local0), with no file to rotate"
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr_text(&output));
}
