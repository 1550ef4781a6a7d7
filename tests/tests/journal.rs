//! `stdout`/`stderr = "journal"` under a real systemd (252 here), booted as PID 1 of a container (see
//! nspawn/mod.rs), read back with `journalctl`. Each test boots its own container and leaves nothing
//! behind; where no container can boot, each skips with the reason.

mod common;
#[allow(dead_code)] // the helpers the systemd tests use too
mod nspawn;

use std::time::Duration;

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

/// One journal entry: its priority, message and `_PID`.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    priority: u8,
    message: String,
    pid: String,
}

/// The string value of `key` in one line of `journalctl --output=json` (a flat object of strings).
fn field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// The entries of this boot with `SYSLOG_IDENTIFIER=identifier`, at `priority` or more urgent.
fn entries(c: &Container, identifier: &str, priority: &str) -> Vec<Entry> {
    c.ok(&format!(
        "journalctl --no-pager --boot --identifier={identifier} --priority={priority} --output=json"
    ))
    .lines()
    .map(|line| Entry {
        priority: field(line, "PRIORITY")
            .and_then(|p| p.parse().ok())
            .unwrap_or(99),
        message: field(line, "MESSAGE").unwrap_or_default(),
        pid: field(line, "_PID").unwrap_or_default(),
    })
    .collect()
}

/// The shape users write first, forked: `stdout = "journal", stderr = "journal"` with a chroot and
/// `user = "nobody"`. The streams are connected before both, so every line lands in the journal under
/// the program's name, from the daemon's pid: stdout at info, stderr at err, a `<N>` prefix at N, a
/// worker's line (forked without exec) and the panic that ends the daemon; `-p err` shows only the
/// errors.
#[test]
fn a_forking_chrooted_daemon_logs_to_the_journal_with_priorities() {
    let Some(c) = container() else { return };
    let fx = common::exe("fx_sink");
    let launched = c.sh(&format!(
        "mkdir -p /run/jail && env -u NOTIFY_SOCKET -u JOURNAL_STREAM -u DAEMON_FOREGROUND RUST_BACKTRACE=0 \
         {fx} --stdout journal --stderr journal --chroot /run/jail --user nobody --then panic"
    ));
    assert!(
        launched.status.success(),
        "{}",
        String::from_utf8_lossy(&launched.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&launched.stderr), "");
    let panicked = |c: &Container| {
        entries(c, "fx_sink", "debug")
            .iter()
            .any(|e| e.message == "fixture panic")
    };
    assert!(
        c.eventually(Duration::from_secs(10), panicked),
        "{:?}",
        entries(&c, "fx_sink", "debug")
    );
    let all = entries(&c, "fx_sink", "debug");
    let pid = all[0].pid.clone();
    // journald takes each line's sender from its credentials: the daemon, or the worker.
    assert!(
        all.iter()
            .all(|e| e.pid == pid || e.message == format!("worker line from {}", e.pid)),
        "{all:?}"
    );
    let at = |message: &str| {
        all.iter()
            .find(|e| e.message == message)
            .unwrap_or_else(|| panic!("no {message:?} in {all:?}"))
            .priority
    };
    assert_eq!(at("plain stdout line"), 6);
    assert_eq!(at("debug line"), 7);
    assert_eq!(at("error line"), 3);
    assert_eq!(at("warning line"), 4);
    assert_eq!(at("plain stderr line"), 3);
    assert_eq!(at("done"), 5);
    assert_eq!(at("fixture panic"), 3);
    let worker = all
        .iter()
        .find(|e| e.message.starts_with("worker line from "))
        .expect("the worker's line");
    assert_eq!(worker.priority, 3);
    assert_ne!(worker.message, format!("worker line from {pid}"));
    let panic_line = all
        .iter()
        .find(|e| {
            e.message
                .starts_with(&format!("thread 'main' ({pid}) panicked at "))
        })
        .unwrap_or_else(|| panic!("no panic line in {all:?}"));
    assert_eq!(panic_line.priority, 3);
    // `journalctl -p err`: the errors and the panic, nothing else.
    let errors: Vec<String> = entries(&c, "fx_sink", "err")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(errors.contains(&"error line".to_string()), "{errors:?}");
    assert!(errors.contains(&"fixture panic".to_string()), "{errors:?}");
    for quiet in ["plain stdout line", "debug line", "warning line", "done"] {
        assert!(
            !errors.contains(&quiet.to_string()),
            "{quiet:?} in {errors:?}"
        );
    }
}

/// Under systemd with stdio on the journal already (`JOURNAL_STREAM` names the stream of fds 1 and 2),
/// `"journal"` changes nothing: the daemon keeps the stream systemd made (so its lines stay the unit's,
/// at the unit's `SyslogLevel=`, info by default, for stderr too), and the level prefixes still work.
#[test]
fn under_systemd_the_services_own_journal_stream_is_kept() {
    let Some(c) = container() else { return };
    let fx = common::exe("fx_sink");
    c.write(
        "/run/systemd/system/sinkfg.service",
        &format!(
            "[Service]\nType=notify\nEnvironment=FIXTURE_LIFE=60 RUST_BACKTRACE=0\n\
             ExecStart={fx} --stdout journal --stderr journal --then wait\n"
        ),
    );
    c.ok("systemctl daemon-reload && systemctl start sinkfg.service");
    let main = c.show("sinkfg.service", "MainPID");
    let stream = c.ok(&format!(
        "tr '\\0' '\\n' < /proc/{main}/environ | sed -n 's/^JOURNAL_STREAM=//p'"
    ));
    let inode = stream
        .trim()
        .split_once(':')
        .expect("JOURNAL_STREAM=DEV:INO")
        .1;
    for fd in [1, 2] {
        assert_eq!(
            c.ok(&format!("readlink /proc/{main}/fd/{fd}")).trim(),
            format!("socket:[{inode}]"),
            "fd {fd} is not systemd's stream"
        );
    }
    let logged = |c: &Container| {
        c.ok("journalctl --no-pager --boot --unit=sinkfg.service --priority=err --output=cat")
            .lines()
            .any(|l| l == "error line")
    };
    assert!(
        c.eventually(Duration::from_secs(10), logged),
        "{}",
        c.journal("sinkfg.service")
    );
    let errors =
        c.ok("journalctl --no-pager --boot --unit=sinkfg.service --priority=err --output=cat");
    for info in ["warning line", "plain stderr line", "plain stdout line"] {
        assert!(!errors.lines().any(|l| l == info), "{info:?} in {errors}");
    }
    let all = c.ok("journalctl --no-pager --boot --unit=sinkfg.service --output=cat");
    assert!(all.lines().any(|l| l == "plain stderr line"), "{all}");
    c.ok("systemctl stop sinkfg.service");
    // Type=forking: the daemon forks away from systemd's stream, and keeps it (not /dev/null).
    c.write(
        "/run/systemd/system/sinkfk.service",
        &format!(
            "[Service]\nType=forking\nPIDFile=/run/sinkfk.pid\nEnvironment=FIXTURE_LIFE=60 RUST_BACKTRACE=0\n\
             ExecStart={fx} --stdout journal --stderr journal --pid-file /run/sinkfk.pid --then wait\n"
        ),
    );
    c.ok("systemctl daemon-reload && systemctl start sinkfk.service");
    let main = c.show("sinkfk.service", "MainPID");
    for fd in [1, 2] {
        let target = c.ok(&format!("readlink /proc/{main}/fd/{fd}"));
        assert!(target.starts_with("socket:["), "fd {fd} is {target}");
    }
    let logged = |c: &Container| {
        c.ok("journalctl --no-pager --boot --unit=sinkfk.service --priority=err --output=cat")
            .lines()
            .any(|l| l == "error line")
    };
    assert!(
        c.eventually(Duration::from_secs(10), logged),
        "{}",
        c.journal("sinkfk.service")
    );
    c.ok("systemctl stop sinkfk.service");
    let traces = c.traces();
    drop(c);
    assert_eq!(traces.left(), Vec::<String>::new());
}

/// The `journal` example: the `log` facade with `env_logger` writing sd-daemon(3) prefixes, so that
/// `journalctl -p warning` shows exactly the warning and the error, and every level keeps its priority.
#[test]
fn the_log_facade_example_is_filtered_by_priority() {
    let Some(c) = container() else { return };
    let binary = nspawn::example("journal");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p examples --example journal`)",
        binary.display()
    );
    c.ok(&format!(
        "env -u NOTIFY_SOCKET -u JOURNAL_STREAM -u DAEMON_FOREGROUND {}",
        binary.display()
    ));
    let logged = |c: &Container| entries(c, "journal", "debug").len() >= 5;
    assert!(
        c.eventually(Duration::from_secs(10), logged),
        "{:?}",
        entries(&c, "journal", "debug")
    );
    let warnings =
        c.ok("journalctl --no-pager --boot --identifier=journal --priority=warning --output=cat");
    assert_eq!(
        warnings,
        "cache directory missing, running without one\ncannot reach the upstream server\n"
    );
    let levels: Vec<(u8, String)> = entries(&c, "journal", "debug")
        .into_iter()
        .map(|e| (e.priority, e.message))
        .collect();
    assert!(
        levels.contains(&(7, "configuration read".into())),
        "{levels:?}"
    );
    assert!(
        levels.contains(&(6, "serving on 127.0.0.1:7007".into())),
        "{levels:?}"
    );
    assert!(
        levels.contains(&(6, "a line on stdout".into())),
        "{levels:?}"
    );
}
