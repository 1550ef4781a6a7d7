//! The unit a program derives from its keys (`myapp unit`), put in place by the program itself
//! (`myapp install`) in the real systemd of a container (see nspawn/mod.rs), then driven with `systemctl`:
//! it starts and is ready, runs with exactly the ids, capabilities, umask, limits and working directory
//! the keys say (read from /proc inside the container), reloads, stops within its schedule, and
//! `myapp uninstall` leaves nothing of it. `fx_unit_all` has every key (the runtime switches: privileged
//! code, a chroot); `fx_unit_user` has the keys systemd applies itself (User=, ambient capabilities),
//! which the runtime checks instead: a unit edited away from them is refused. Each test boots its own
//! container; where none can boot, each skips with the reason.

mod common;
#[allow(dead_code)]
mod nspawn;

use std::time::{Duration, Instant};

use nspawn::Container;

fn container() -> Option<Container> {
    match nspawn::boot() {
        Ok(container) => Some(container),
        Err(why) => {
            common::skip(&why);
            None
        }
    }
}

/// `systemctl enable --now UNIT`, which returns once the daemon is ready; the unit's journal if it failed.
fn enable_now(c: &Container, unit: &str) {
    let output = c.sh(&format!("systemctl enable --now {unit}"));
    assert!(
        output.status.success(),
        "systemctl enable --now {unit}: {}\n{}\nStatusText: {}",
        String::from_utf8_lossy(&output.stderr),
        c.journal(unit),
        c.show(unit, "StatusText")
    );
}

/// The values of a `/proc/PID/status` line, read inside the container.
fn status(c: &Container, pid: &str, key: &str) -> String {
    let status = c.ok(&format!("cat /proc/{pid}/status"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A `/proc/PID/limits` row: soft and hard.
fn limit(c: &Container, pid: &str, name: &str) -> String {
    let limits = c.ok(&format!("cat /proc/{pid}/limits"));
    let row = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    row[name.len()..]
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The nice value, field 19 of /proc/PID/stat.
fn nice(c: &Container, pid: &str) -> String {
    let stat = c.ok(&format!("cat /proc/{pid}/stat"));
    let after_comm = stat.rsplit_once(')').expect("comm").1;
    after_comm.split_whitespace().nth(16).unwrap().to_string()
}

/// What is left of `name` once uninstalled: unit files, symlinks, its loaded state, its processes.
fn leftovers(c: &Container, name: &str, exe: &str) -> Vec<String> {
    let mut left: Vec<String> = c
        .ok(&format!(
            "find /etc/systemd/system /run/systemd/system -name '{name}*' 2>/dev/null; true"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    let load = c.show(&format!("{name}.service"), "LoadState");
    if load != "not-found" {
        left.push(format!("LoadState={load}"));
    }
    let running = c.ok(&format!(
        "for p in /proc/[0-9]*; do [ \"$(readlink $p/exe)\" = '{exe}' ] && echo $p; done; true"
    ));
    left.extend(running.lines().map(|p| format!("process {p}")));
    left
}

#[test]
fn the_unit_of_every_key_installs_starts_runs_as_the_keys_say_reloads_stops_and_uninstalls() {
    let Some(c) = container() else { return };
    let exe = common::exe("fx_unit_all");
    let unit = "fx_unit_all.service";
    // The jail and the working directory inside it are the administrator's to make.
    c.ok("mkdir -p /srv/fx_unit_all/data /srv/fx_unit_all/log");
    let printed = c.ok(&format!("{exe} unit systemd"));
    let said = c.ok(&format!("{exe} install"));
    assert!(
        said.contains(&format!("systemctl enable --now {unit}")),
        "{said}"
    );
    assert_eq!(
        c.ok(&format!("cat /etc/systemd/system/{unit}")),
        printed,
        "install writes what unit prints"
    );
    enable_now(&c, unit);
    assert_eq!(c.show(unit, "ActiveState"), "active");
    let pid = c.show(unit, "MainPID");
    assert_eq!(
        c.ok(&format!("readlink /proc/{pid}/exe")).trim(),
        exe,
        "systemd's main process is the program: it did not fork"
    );
    // nobody:nogroup, with nobody's groups (initgroups: nogroup alone).
    assert_eq!(status(&c, &pid, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status(&c, &pid, "Gid"), "65534 65534 65534 65534");
    assert_eq!(status(&c, &pid, "Groups"), "65534");
    // keep_caps = ["net_bind_service"] (bit 10), not ambient.
    for (set, value) in [
        ("CapPrm", "0000000000000400"),
        ("CapEff", "0000000000000400"),
        ("CapBnd", "0000000000000400"),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
    ] {
        assert_eq!(status(&c, &pid, set), value, "{set}");
    }
    assert_eq!(status(&c, &pid, "Umask"), "0027");
    assert_eq!(status(&c, &pid, "NoNewPrivs"), "1");
    assert_eq!(limit(&c, &pid, "Max open files"), "1024 4096");
    assert_eq!(limit(&c, &pid, "Max core file size"), "0 0");
    assert_eq!(nice(&c, &pid), "5");
    assert_eq!(
        c.ok(&format!("readlink /proc/{pid}/root")).trim(),
        "/srv/fx_unit_all"
    );
    assert_eq!(
        c.ok(&format!("readlink /proc/{pid}/cwd")).trim(),
        "/srv/fx_unit_all/data"
    );
    // The privileged code's port, served as nobody.
    assert!(
        c.ok("cat /proc/net/tcp")
            .contains(" 0100007F:0050 00000000:0000 0A "),
        "listening on 127.0.0.1:80"
    );
    let out = c.ok("cat /srv/fx_unit_all/log/out.log");
    let environment = out
        .lines()
        .find_map(|l| l.strip_prefix("environment: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        environment
            .split(' ')
            .all(|name| { ["PATH", "LANG", "TZ"].contains(&name) || name.starts_with("LISTEN_") }),
        "env = \"clean\" (NOTIFY_SOCKET, WATCHDOG_* and the unit's variable taken by the runtime): {environment}"
    );
    // ExecReload= is the program's `reload`, which waits for the daemon's answer.
    c.ok(&format!("systemctl reload {unit}"));
    assert!(
        c.journal(unit).contains(&format!("reloaded (pid {pid})")),
        "{}",
        c.journal(unit)
    );
    assert!(
        c.ok("cat /srv/fx_unit_all/log/out.log")
            .contains("reloaded")
    );
    // ExecStop= runs the schedule (TERM, up to 5 s): the daemon takes its second and returns.
    let asked = Instant::now();
    c.ok(&format!("systemctl stop {unit}"));
    let took = asked.elapsed();
    println!(
        "systemctl stop {unit}: {took:?} (the daemon's clean-up takes 1 s; the schedule allows 5 s)"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "stopped in {took:?}"
    );
    assert_eq!(c.show(unit, "ActiveState"), "inactive");
    assert_eq!(c.show(unit, "Result"), "success");
    assert!(
        c.journal(unit)
            .contains(&format!("stopped (pid {pid}, SIGTERM)")),
        "{}",
        c.journal(unit)
    );
    assert!(
        c.ok("cat /srv/fx_unit_all/log/out.log")
            .contains("stopping")
    );
    let said = c.ok(&format!("{exe} uninstall"));
    assert!(
        said.contains("removed /etc/systemd/system/fx_unit_all.service"),
        "{said}"
    );
    assert_eq!(leftovers(&c, "fx_unit_all", exe), Vec::<String>::new());
    assert!(
        c.ok("test -e /run/fx_unit_all || echo gone")
            .contains("gone"),
        "its runtime directory went with it"
    );
}

#[test]
fn the_keys_systemd_applies_are_checked_by_the_runtime_and_a_unit_edited_away_from_them_is_refused()
{
    let Some(c) = container() else { return };
    let exe = common::exe("fx_unit_user");
    let unit = "fx_unit_user.service";
    c.ok(&format!("{exe} install"));
    enable_now(&c, unit);
    let pid = c.show(unit, "MainPID");
    // User=daemon: uid and gid 1 from the first instruction on; the capability as an ambient one.
    assert_eq!(status(&c, &pid, "Uid"), "1 1 1 1");
    assert_eq!(status(&c, &pid, "Gid"), "1 1 1 1");
    for set in ["CapPrm", "CapEff", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(status(&c, &pid, set), "0000000000000400", "{set}");
    }
    assert_eq!(status(&c, &pid, "Umask"), "0077");
    assert_eq!(status(&c, &pid, "NoNewPrivs"), "1");
    assert_eq!(limit(&c, &pid, "Max open files"), "2048 2048");
    assert_eq!(limit(&c, &pid, "Max core file size"), "0 0");
    assert_eq!(nice(&c, &pid), "3");
    assert_eq!(
        c.ok(&format!("readlink /proc/{pid}/cwd")).trim(),
        "/var/lib/fx_unit_user"
    );
    assert!(
        c.ok("cat /proc/net/tcp")
            .contains(" 0100007F:0051 00000000:0000 0A "),
        "bound 127.0.0.1:81 as daemon"
    );
    // The pid file and its lock are the user's, in the directory systemd made for it: the user's own
    // `status` finds the daemon, root's refuses to trust them (root never acts on files the daemon's
    // user could have planted; it has systemctl).
    let said = c.ok(&format!(
        "setpriv --reuid=1 --regid=1 --init-groups {exe} status"
    ));
    assert_eq!(said.trim(), format!("running (pid {pid})"));
    let said = c.sh(&format!("{exe} status"));
    assert_eq!(said.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&said.stdout)
            .contains("its directory /run/fx_unit_user is not safe: it belongs to uid 1"),
        "{said:?}"
    );
    c.ok(&format!("systemctl reload {unit}"));
    assert!(
        c.ok("cat /var/log/fx_unit_user/err.log")
            .contains("reloaded")
    );
    c.ok(&format!("systemctl stop {unit}"));
    assert_eq!(c.show(unit, "Result"), "success");
    assert!(
        c.journal(unit)
            .contains(&format!("stopped (pid {pid}, SIGTERM)")),
        "ExecStop= ran the program's stop as its user: {}",
        c.journal(unit)
    );
    // The administrator changes the umask behind the program's back: the runtime, which checks what
    // systemd applied instead of applying it again, refuses to start, and says why.
    c.write(
        &format!("/etc/systemd/system/{unit}.d/umask.conf"),
        "[Service]\nUMask=0022\n",
    );
    c.ok("systemctl daemon-reload");
    let started = c.sh(&format!("systemctl start {unit}"));
    assert!(!started.status.success(), "started with the wrong umask");
    let journal = c.journal(unit);
    assert!(
        journal.contains(
            "DAEMON_KEYS_APPLIED says the service manager applied umask = 0o077, but this process has umask 0o022"
        ),
        "{journal}"
    );
    assert!(
        c.show(unit, "StatusText")
            .contains("regenerate the file with `fx_unit_user unit`"),
        "{}",
        c.show(unit, "StatusText")
    );
    c.ok(&format!(
        "rm -r /etc/systemd/system/{unit}.d && systemctl daemon-reload && systemctl reset-failed {unit}"
    ));
    let said = c.ok(&format!("{exe} uninstall"));
    assert!(said.contains("stopped, disabled and removed"), "{said}");
    assert_eq!(leftovers(&c, "fx_unit_user", exe), Vec::<String>::new());
}

#[test]
fn install_refuses_what_it_did_not_write_and_uninstall_removes_only_what_it_did() {
    let Some(c) = container() else { return };
    let exe = common::exe("fx_unit_user");
    let path = "/etc/systemd/system/fx_unit_user.service";
    let run = |script: &str| {
        let output = c.sh(script);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    // A hand-written unit of the same name stays, unless --force.
    c.write(path, "[Service]\nExecStart=/bin/true\n");
    let (code, said) = run(&format!("{exe} install"));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("refusing to replace"), "{said}");
    assert_eq!(
        c.ok(&format!("cat {path}")),
        "[Service]\nExecStart=/bin/true\n"
    );
    let (code, said) = run(&format!("{exe} uninstall"));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("is not what `fx_unit_user install` writes"),
        "{said}"
    );
    let (code, said) = run(&format!("{exe} install --force"));
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(c.ok(&format!("cat {path}")), c.ok(&format!("{exe} unit")));
    let (code, said) = run(&format!("{exe} install"));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("installed already, unchanged"), "{said}");
    // Only root writes units.
    let (code, said) = run(&format!(
        "setpriv --reuid=1 --regid=1 --clear-groups {exe} install"
    ));
    assert_eq!(code, Some(4), "{said}");
    // Never a unit that runs, as root at every boot, an executable another user could replace: one in
    // a directory others may write, or one a user owns (a build tree), unless --force.
    c.ok("systemctl daemon-reload");
    for (setup, why) in [
        (
            "chmod 0777 /var/tmp/fx-open",
            "writable by its group or others (mode 777)",
        ),
        ("chown 1:1 /var/tmp/fx-open/fx_unit_user", "owned by uid 1"),
    ] {
        let copy = "/var/tmp/fx-open/fx_unit_user";
        c.ok(&format!(
            "rm -rf /var/tmp/fx-open && mkdir -m 0755 /var/tmp/fx-open && cp {exe} {copy} && {setup}"
        ));
        c.ok(&format!("rm -f {path}"));
        let (code, said) = run(&format!("{copy} install"));
        assert_eq!(code, Some(1), "{said}");
        assert!(
            said.contains("can be replaced by another user than root") && said.contains(why),
            "{said}"
        );
        assert_eq!(
            c.ok(&format!("ls {path} 2>/dev/null; true")),
            "",
            "nothing installed"
        );
        let (code, said) = run(&format!("{copy} install --force"));
        assert_eq!(code, Some(0), "{said}");
        let (code, said) = run(&format!("{copy} uninstall"));
        assert_eq!(code, Some(0), "{said}");
    }
    c.ok("rm -rf /var/tmp/fx-open");
    let (code, said) = run(&format!("{exe} install"));
    assert_eq!(code, Some(0), "{said}");
    // A masked unit (a symbolic link to /dev/null) is never replaced nor removed, --force or not.
    c.ok(&format!("rm {path} && systemctl mask fx_unit_user.service"));
    for action in ["install", "install --force", "uninstall"] {
        let (code, said) = run(&format!("{exe} {action}"));
        assert_eq!(code, Some(1), "{action}: {said}");
        assert!(
            said.contains("is a symbolic link (to /dev/null)"),
            "{action}: {said}"
        );
    }
    c.ok("systemctl unmask fx_unit_user.service");
    let (code, said) = run(&format!("{exe} uninstall"));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("is not installed"), "{said}");
    // Nothing left behind by the refused attempts: no temporary file.
    assert_eq!(c.ok("ls -A /etc/systemd/system | grep fx_unit; true"), "");
}
