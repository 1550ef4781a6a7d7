//! Privileges on live daemons: code run as root before the drop, kept capabilities, and the hardening keys
//! (`core_dumps`, `no_new_privs`, `nofile`, `nice`, `env`), each observed from outside through /proc.

mod common;

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{LiveDaemon, before_exec, check, fixture, launch, scratch, skip, start, stderr_text};
use common::{NOBODY, is_root};

fn privlogs(out: &Path, args: &[&str]) -> Command {
    let mut command = fixture("fx_privlogs", out);
    command.args(args);
    command
}

/// A scratch directory the daemon can report into after switching to nobody.
fn scratch_for_all(tag: &str) -> (common::TempDir, std::path::PathBuf) {
    let (dir, out) = scratch(tag);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    (dir, out)
}

fn hex(values: &[String]) -> u64 {
    u64::from_str_radix(values.first().expect("a mask"), 16).expect("hex mask")
}

/// The bit of a capability in /proc/PID/status masks.
fn cap(number: u32) -> u64 {
    1 << number
}

const CAP_NET_BIND_SERVICE: u32 = 10;

/// The `Max ...` line of /proc/PID/limits: (soft, hard).
fn limit(daemon: &LiveDaemon, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(daemon.proc("limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

#[test]
fn privileged_code_binds_port_80_as_root_and_the_daemon_serves_it_as_nobody() {
    if !is_root() {
        return skip("binding port 80 and switching to nobody need root");
    }
    let (_dir, out) = scratch_for_all("priv-bind");
    let command = privlogs(
        &out,
        &[
            "--user",
            "nobody",
            "--privileged-bind",
            "127.0.0.1:80",
            "--then",
            "serve",
        ],
    );
    let daemon = start(command, &out);
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
    assert_eq!(daemon.status("Gid"), vec![NOBODY.to_string(); 4]);
    assert_eq!(
        hex(&daemon.status("CapEff")),
        0,
        "nobody holds no capability"
    );
    let sockets = daemon
        .fds()
        .into_iter()
        .filter(|(_, target)| target.starts_with("socket:"))
        .count();
    assert_eq!(
        sockets,
        1,
        "the listener reached the daemon: {:?}",
        daemon.fds()
    );
    let mut stream = std::net::TcpStream::connect("127.0.0.1:80").expect("connect to port 80");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert_eq!(
        answer,
        format!("uid={NOBODY}\n"),
        "served by the daemon as nobody"
    );
}

#[test]
fn a_failing_privileged_code_fails_the_launch_with_its_message_and_leaves_no_pid_file() {
    let (dir, out) = scratch("priv-fail");
    let pid_file = dir.join("app.pid");
    let output = launch(privlogs(
        &out,
        &[
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--privileged-fail",
            "no key in /etc/app/key",
        ],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_privlogs: the privileged code failed: no key in /etc/app/key\n"
    );
    assert!(!out.exists(), "the body never ran");
    assert!(!pid_file.exists(), "the failed start removed its pid file");
}

#[test]
fn kept_capability_lets_nobody_bind_port_80_and_nothing_else_is_left() {
    if !is_root() {
        return skip("keeping a capability across the switch to nobody needs root");
    }
    // Without the key, nobody cannot bind port 80: the observation below can fail.
    let (_dir, out) = scratch_for_all("caps-none");
    let daemon = start(
        privlogs(
            &out,
            &["--user", "nobody", "--then", "bind", "127.0.0.2:80"],
        ),
        &out,
    );
    let report = common::wait_for_report(&out);
    assert!(report.contains("bound=Permission denied"), "{report}");
    drop(daemon);

    let (_dir, out) = scratch_for_all("caps-keep");
    let args = [
        "--user",
        "nobody",
        "--keep-cap",
        "net_bind_service",
        "--then",
        "bind",
        "127.0.0.2:80",
    ];
    let daemon = start(privlogs(&out, &args), &out);
    let report = common::wait_for_report(&out);
    assert!(report.ends_with(" bound=ok\n"), "{report}");
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
    let kept = cap(CAP_NET_BIND_SERVICE);
    assert_eq!(hex(&daemon.status("CapPrm")), kept, "permitted");
    assert_eq!(hex(&daemon.status("CapEff")), kept, "effective");
    assert_eq!(hex(&daemon.status("CapInh")), 0, "inheritable");
    assert_eq!(hex(&daemon.status("CapAmb")), 0, "ambient only when asked");
    assert_eq!(
        hex(&daemon.status("CapBnd")),
        kept,
        "bounding: every other one dropped"
    );
}

#[test]
fn kept_capability_is_ambient_when_asked() {
    if !is_root() {
        return skip("keeping a capability across the switch to nobody needs root");
    }
    let (_dir, out) = scratch_for_all("caps-ambient");
    let args = [
        "--user",
        "nobody",
        "--keep-cap",
        "cap_net_bind_service",
        "--ambient",
    ];
    let daemon = start(privlogs(&out, &args), &out);
    let kept = cap(CAP_NET_BIND_SERVICE);
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(hex(&daemon.status(set)), kept, "{set}");
    }
}

#[test]
fn keeping_setuid_fails_the_start_since_root_could_be_regained() {
    if !is_root() {
        return skip("keeping a capability across the switch to nobody needs root");
    }
    let (_dir, out) = scratch_for_all("caps-setuid");
    let output = launch(privlogs(
        &out,
        &["--user", "nobody", "--keep-cap", "setuid"],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_privlogs: privileges were not dropped: root could be regained after switching to 65534\n"
    );
    assert!(!out.exists(), "the body never ran");
}

#[test]
fn unknown_capability_and_keep_caps_without_user_are_refused() {
    let (_dir, out) = scratch("caps-bad");
    let output = launch(privlogs(
        &out,
        &["--user", "nobody", "--keep-cap", "net_bind"],
    ));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_text(&output).contains("unknown capability \"net_bind\""),
        "{}",
        stderr_text(&output)
    );
    let output = launch(privlogs(&out, &["--keep-cap", "net_bind_service"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_text(&output),
        "fx_privlogs: invalid daemon configuration: keep_caps needs a user to switch to\n"
    );
}

#[test]
fn hardening_keys_are_in_force_in_the_daemon() {
    if !is_root() {
        return skip("a negative nice value needs root");
    }
    let (_dir, out) = scratch_for_all("harden");
    let args = [
        "--user",
        "nobody",
        "--no-core-dumps",
        "--no-new-privs",
        "--nofile",
        "1000:2000",
        "--nice",
        "-5",
    ];
    let mut command = privlogs(&out, &args);
    let limits = || {
        // As a shell with `ulimit -c unlimited` and other nofile limits would leave them. (The hard
        // limit is lowered, not raised: raising it needs CAP_SYS_RESOURCE, which containers often drop.)
        let core = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        let files = libc::rlimit {
            rlim_cur: 512,
            rlim_max: 4096,
        };
        // SAFETY: setrlimit reads the structs; both calls are async-signal-safe.
        check(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const core) })?;
        // SAFETY: as above.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const files) })
    };
    // SAFETY: `limits` only calls setrlimit (async-signal-safe) on its own stack values, allocating nothing.
    unsafe { before_exec(&mut command, limits) };
    let daemon = start(command, &out);
    assert_eq!(
        limit(&daemon, "Max core file size"),
        ("0".into(), "0".into())
    );
    assert_eq!(
        limit(&daemon, "Max open files"),
        ("1000".into(), "2000".into()),
        "soft and hard as the key says"
    );
    assert_eq!(daemon.stat()[16], "-5", "nice, set while root");
    assert_eq!(daemon.status("NoNewPrivs"), vec!["1".to_string()]);
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
}

#[test]
fn without_hardening_keys_the_inherited_settings_stay() {
    let (_dir, out) = scratch("harden-none");
    let mut command = privlogs(&out, &[]);
    let limits = || {
        let files = libc::rlimit {
            rlim_cur: 700,
            rlim_max: 900,
        };
        // SAFETY: setrlimit reads the struct; it is async-signal-safe.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const files) })
    };
    // SAFETY: `limits` only calls setrlimit (async-signal-safe) on a stack value, allocating nothing.
    unsafe { before_exec(&mut command, limits) };
    let daemon = start(command, &out);
    assert_eq!(
        limit(&daemon, "Max open files"),
        ("700".into(), "900".into())
    );
    assert_eq!(daemon.status("NoNewPrivs"), vec!["0".to_string()]);
}

#[test]
fn no_core_dumps_makes_a_daemon_undumpable_even_without_a_user_switch() {
    if !is_root() {
        return skip("the launcher is made nobody from root");
    }
    // The switch to another user already leaves the daemon undumpable (fs.suid_dumpable); a daemon
    // launched by nobody as nobody shows the key's own effect: /proc/PID belongs to root.
    for (core_dumps, owner) in [(true, NOBODY), (false, 0)] {
        let (_dir, out) = scratch_for_all("dumpable");
        let mut command = privlogs(
            &out,
            if core_dumps {
                &[]
            } else {
                &["--no-core-dumps"]
            },
        );
        let become_nobody = || {
            // SAFETY: setgid and setuid are async-signal-safe and take integers.
            check(unsafe { libc::setgid(NOBODY) })?;
            // SAFETY: as above.
            check(unsafe { libc::setuid(NOBODY) })
        };
        // SAFETY: `become_nobody` only calls setgid and setuid (async-signal-safe), allocating nothing.
        unsafe { before_exec(&mut command, become_nobody) };
        let daemon = start(command, &out);
        assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
        let status_owner = std::fs::metadata(daemon.proc("status")).unwrap().uid();
        assert_eq!(
            status_owner, owner,
            "core_dumps {core_dumps}: owner of /proc/PID/status"
        );
    }
}

#[test]
fn clean_env_keeps_only_systemd_and_basic_variables() {
    let (_dir, out) = scratch("env-clean");
    let mut command = privlogs(&out, &["--env", "clean", "--then", "env"]);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("HOME", "/root")
        .env("APP_SECRET", "hunter2")
        .env("LISTEN_FDNAMES", "web")
        .env("FIXTURE_OUT", &out)
        .env("FIXTURE_LIFE", "30");
    let _daemon = start(command, &out);
    let report = common::wait_for_report(&out);
    let names = report.split_whitespace().nth(1).unwrap_or("");
    // LISTEN_FDNAMES is gone too: the runtime takes systemd's variables over at start and removes them
    // (sd_listen_fds(3) does the same), so that a child of the daemon cannot act on them.
    assert_eq!(names, "LANG,PATH,TZ", "{report}");

    let (_dir, out) = scratch("env-keep");
    let mut command = privlogs(&out, &["--env", "HOME,FIXTURE_*", "--then", "env"]);
    command.env("APP_SECRET", "hunter2").env("HOME", "/root");
    let _daemon = start(command, &out);
    let report = common::wait_for_report(&out);
    let names: Vec<&str> = report
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split(',')
        .collect();
    assert!(
        names.contains(&"HOME") && names.contains(&"FIXTURE_OUT"),
        "{report}"
    );
    assert!(!names.contains(&"APP_SECRET"), "{report}");
}

#[test]
fn the_attribute_keys_bind_as_root_keep_a_capability_and_harden() {
    if !is_root() {
        return skip("binding port 80 and switching to nobody need root");
    }
    let (_dir, out) = scratch_for_all("attribute");
    let mut command = fixture("fx_privileged", &out);
    command.env("APP_SECRET", "hunter2");
    let daemon = start(command, &out);
    let report = common::wait_for_report(&out);
    assert!(
        report.ends_with(" bound=ok\n"),
        "kept net_bind_service: {report}"
    );
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
    let kept = cap(CAP_NET_BIND_SERVICE);
    assert_eq!(hex(&daemon.status("CapPrm")), kept);
    assert_eq!(hex(&daemon.status("CapEff")), kept);
    assert_eq!(hex(&daemon.status("CapAmb")), 0);
    assert_eq!(hex(&daemon.status("CapBnd")), kept);
    assert_eq!(daemon.status("NoNewPrivs"), vec!["1".to_string()]);
    assert_eq!(
        limit(&daemon, "Max core file size"),
        ("0".into(), "0".into())
    );
    assert_eq!(
        limit(&daemon, "Max open files"),
        ("1000".into(), "2000".into())
    );
    assert_eq!(daemon.stat()[16], "3");
    let mut stream = std::net::TcpStream::connect("127.0.0.3:80").expect("connect to port 80");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert_eq!(answer, format!("uid={NOBODY}\n"));
}

/// Review F9: `no_new_privs` and the bounding-set drop of `keep_caps` apply to the calling thread only, so
/// a thread the privileged code left running would keep neither: the start fails instead, saying why.
#[test]
fn a_thread_left_by_the_privileged_code_fails_the_start_with_per_thread_settings() {
    if !is_root() {
        return skip("keep_caps and the privileged code need root");
    }
    for settings in [
        &["--no-new-privs"][..],
        &["--keep-cap", "net_bind_service"][..],
    ] {
        let (_dir, out) = scratch_for_all("privileged-thread");
        let mut args = vec!["--user", "nobody", "--privileged-thread"];
        args.extend_from_slice(settings);
        let output = launch(privlogs(&out, &args));
        let stderr = stderr_text(&output);
        if output.status.success() {
            // Started anyway: stop the daemon before failing.
            let report = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(pid) = report
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                drop(LiveDaemon::new(pid));
            }
            panic!("{settings:?}: the start succeeded with a thread left running");
        }
        assert!(
            stderr.contains("2 threads are running") && stderr.contains("apply to one thread"),
            "{settings:?}: {stderr}"
        );
    }
    // Without those settings, a thread is the program's business.
    let (_dir, out) = scratch_for_all("privileged-thread-ok");
    let daemon = start(
        privlogs(&out, &["--user", "nobody", "--privileged-thread"]),
        &out,
    );
    assert_eq!(daemon.status("Threads"), ["2"]);
}

/// A user who is not root asking for another user (or group) is told that, before any file is made:
/// not about the first file the impossible switch would have failed on (the lock file, a log file).
#[test]
fn an_impossible_switch_is_refused_before_any_file_is_touched() {
    if !is_root() {
        skip("running the launcher as nobody needs root");
        return;
    }
    let (dir, out) = scratch_for_all("switch-refused");
    let cases = [
        (
            "--user",
            "root",
            "cannot switch to user root: only root can change user (running as uid 65534)",
        ),
        (
            "--group",
            "root",
            "cannot switch to group root: only root can change group (running as uid 65534)",
        ),
    ];
    for (flag, name, message) in cases {
        let (log, pid_file) = (dir.join("app.log"), dir.join("app.pid"));
        let mut command = fixture("fx_builder", &out);
        command.args([flag, name]);
        command.args(["--stdout", log.to_str().unwrap()]);
        command.args(["--pid-file", pid_file.to_str().unwrap()]);
        std::os::unix::process::CommandExt::uid(&mut command, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut command, NOBODY);
        let output = launch(command);
        assert_eq!(output.status.code(), Some(1), "{flag}");
        assert_eq!(stderr_text(&output), format!("fx_builder: {message}\n"));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{flag}: the refused start left {left:?}");
    }
}

/// `privileged` with the async server shape: the value bound as root reaches `async fn main`'s
/// parameter under `#[tokio::main]`, and is served as nobody from a tokio task.
#[test]
fn an_async_main_gets_the_privileged_value() {
    if !is_root() {
        return skip("binding port 80 and switching to nobody need root");
    }
    let (_dir, out) = scratch_for_all("privileged-async");
    let daemon = start(fixture("fx_privileged_async", &out), &out);
    assert_eq!(daemon.status("Uid"), vec![NOBODY.to_string(); 4]);
    let mut stream = std::net::TcpStream::connect("127.0.0.4:80").expect("connect to port 80");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert_eq!(answer, format!("uid={NOBODY}\n"));
}
