//! The service manager's files a program derives from its keys, checked on this machine (their life under a
//! real systemd is `tests/unit_systemd.rs`): every generated unit passes `systemd-analyze verify`; the
//! launchd property list parses with Python's `plistlib` and holds the keys' values (a golden-file test:
//! there is no macOS, nor launchd, here); the example files in examples/ are the echo example's own
//! output, or say that they are hand-written; `install` and `uninstall` without systemd say so; and the
//! runtime checks the keys a unit says it applied instead of applying them.
//!
//! `UNIT_GOLDEN=overwrite cargo test -p tests --test unit` rewrites the golden and example files from
//! the programs' output (review the diff).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `command` to its end. A program copied here may be busy for a moment ("text file busy": a child
/// another test thread forked meanwhile still holds the copy's descriptor until its exec), so that is
/// tried again.
fn run(command: &mut Command) -> Output {
    let mut tries = 0;
    loop {
        match command.stdin(Stdio::null()).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.expect("run the program"),
        }
    }
}

/// What `program ARGS` printed on stdout, which must have succeeded.
fn printed(program: &Path, args: &[&str]) -> String {
    let output = run(Command::new(program).args(args));
    assert!(
        output.status.success(),
        "{} {args:?}: {}\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `fixture` copied to `dir/name`: the files name the executable by its absolute path and file name.
fn copy_as(fixture: &Path, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(fixture, &copy).expect("copy the program");
    copy
}

/// Compares `text` with the checked-in file `path`, or rewrites the file with `UNIT_GOLDEN=overwrite`.
fn golden(path: &Path, text: &str) {
    if std::env::var_os("UNIT_GOLDEN").is_some_and(|v| v == "overwrite") {
        std::fs::write(path, text).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == text,
        "{} drifted from what the program generates now; review, then rewrite it with \
         UNIT_GOLDEN=overwrite cargo test -p tests --test unit\n--- generated:\n{text}",
        path.display()
    );
}

fn echo_example() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_fx_unit_builder"))
        .parent()
        .unwrap()
        .join("examples/echo");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p examples --example echo`)",
        path.display()
    );
    path
}

/// The units of the attribute fixtures, the echo example, and the builder in a range of key
/// combinations: each is written where systemd-analyze can read it, with the executable it names.
fn units(dir: &Path) -> Vec<(String, String)> {
    let builder = Path::new(common::exe("fx_unit_builder"));
    // An executable whose path needs quoting and escaping: white space, `%` (a specifier) and `$`.
    let odd_dir = dir.join("odd dir 100% $HOME");
    std::fs::create_dir(&odd_dir).unwrap();
    let odd = copy_as(builder, &odd_dir, "fx_unit_builder");
    let mut units = vec![
        (
            "fx_unit_all".to_string(),
            printed(Path::new(common::exe("fx_unit_all")), &["unit", "systemd"]),
        ),
        (
            "fx_unit_user".to_string(),
            printed(Path::new(common::exe("fx_unit_user")), &["unit"]),
        ),
        (
            "echo".to_string(),
            printed(&echo_example(), &["unit", "systemd"]),
        ),
    ];
    let combinations: &[&[&str]] = &[
        // The defaults: no pid file, no commands (systemd stops it by its schedule's first step).
        &[],
        // A user whose files are in /tmp, which systemd makes for nobody: the runtime switches.
        &[
            "--user",
            "daemon",
            "--group",
            "daemon",
            "--pid-file",
            "/tmp/app.pid",
            "--stderr",
            "/tmp/app.log",
            "--commands",
            "--stop-retry",
            "TERM/10/forever/KILL/5",
            "--nofile",
            "512",
            "512",
            "--nice",
            "-5",
            "--env",
            "RUST_LOG,HOME",
            "--watchdog-auto",
        ],
        // Everything under systemd's own directories: systemd switches, with ambient capabilities.
        &[
            "--user",
            "daemon",
            "--pid-file",
            "/run/app/app.pid",
            "--stdout",
            "/var/log/app/out.log",
            "--stderr",
            "/var/log/app/err.log",
            "--workdir",
            "/var/lib/app",
            "--keep-caps",
            "net_bind_service,net_raw",
            "--ambient",
            "--no-new-privs",
            "--no-core-dumps",
            "--commands",
            "--manual",
            "--ready-timeout",
            "5",
            "--reopen-on-usr1",
        ],
        // Capabilities that are not ambient, and privileged code: the runtime switches.
        &[
            "--user",
            "daemon",
            "--keep-caps",
            "cap_net_bind_service",
            "--privileged",
            "--chroot",
            "/srv/jail",
            "--workdir",
            "/data",
            "--keep-fd",
            "3",
            "--env",
            "clean",
            "--stop-retry",
            "-INT/2.5/KILL/1",
        ],
        // Paths that need quoting and escaping in a unit.
        &[
            "--user",
            "daemon",
            "--pid-file",
            "/run/my app/app.pid",
            "--workdir",
            "/var/lib/50% off",
            "--stderr",
            "/var/log/my app/x.log",
            "--umask",
            "027",
        ],
        &[
            "--pid-file",
            "/srv/state dir/app.pid",
            "--workdir",
            "/srv/state dir",
            "--commands",
        ],
    ];
    for (n, flags) in combinations.iter().enumerate() {
        let mut args: Vec<&str> = flags.to_vec();
        args.push("systemd");
        units.push((format!("builder{n}"), printed(builder, &args)));
    }
    units.push((
        "odd".to_string(),
        printed(
            &odd,
            &["--pid-file", "/run/odd/odd.pid", "--commands", "systemd"],
        ),
    ));
    units
}

#[test]
fn every_generated_unit_passes_systemd_analyze_verify() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|o| o.status.success()) {
        common::skip("systemd-analyze is not installed (package systemd)");
        return;
    }
    let dir = TempDir::new("unit-verify");
    let units = units(dir.path());
    assert!(units.len() >= 10);
    for (name, text) in units {
        let path = dir.join(&format!("{name}.service"));
        std::fs::write(&path, &text).unwrap();
        let output = run(Command::new("systemd-analyze").arg("verify").arg(&path));
        let said = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {name}.service: {}\n{said}\n{text}",
            output.status
        );
    }
}

/// What Python's plistlib reads in `plist`, as JSON with sorted keys.
fn parsed_plist(plist: &str) -> Option<String> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read()), sort_keys=True))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), plist.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "plistlib refused the property list: {}\n{plist}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap().trim().to_string())
}

/// A golden-file test: launchd itself is not here (no macOS), so the property list is checked against the
/// checked-in copy, and against Python's plistlib, which must read every key's value back.
#[test]
fn the_launchd_property_list_parses_and_holds_the_keys_values() {
    if Command::new("python3").arg("--version").output().is_err() {
        common::skip("python3 is not installed (its plistlib parses the property lists)");
        return;
    }
    let dir = TempDir::new("unit-plist");
    // Every key: the runtime switches (privileged code, a chroot), launchd sets the limits.
    let all = copy_as(
        Path::new(common::exe("fx_unit_all")),
        dir.path(),
        "fx_unit_all",
    );
    let plist = printed(&all, &["unit", "launchd"]);
    let exe = all.display().to_string();
    golden(
        &workspace().join("tests/golden/fx_unit_all.plist"),
        &plist.replace(&exe, "/usr/local/bin/fx_unit_all"),
    );
    assert_eq!(
        parsed_plist(&plist).unwrap(),
        format!(
            concat!(
                r#"{{"EnvironmentVariables": {{"DAEMON_KEYS_APPLIED": "umask,nofile,nice"}}, "ExitTimeOut": 7, "#,
                r#""HardResourceLimits": {{"NumberOfFiles": 4096}}, "KeepAlive": {{"SuccessfulExit": false}}, "#,
                r#""Label": "fx_unit_all", "Nice": 5, "ProgramArguments": ["{exe}"], "RunAtLoad": true, "#,
                r#""SoftResourceLimits": {{"NumberOfFiles": 1024}}, "StandardErrorPath": "/srv/fx_unit_all/log/err.log", "#,
                r#""StandardOutPath": "/srv/fx_unit_all/log/out.log", "Umask": 23}}"#
            ),
            exe = exe
        )
    );
    // launchd switches: no files before the drop, nothing that needs root first.
    let builder = copy_as(
        Path::new(common::exe("fx_unit_builder")),
        dir.path(),
        "fx_unit_builder",
    );
    let plist = printed(
        &builder,
        &[
            "--user",
            "daemon",
            "--group",
            "daemon",
            "--workdir",
            "/var/empty",
            "--umask",
            "077",
            "--nofile",
            "256",
            "1024",
            "--nice",
            "2",
            "--stop-retry",
            "TERM/5/forever/KILL/1",
            "launchd",
        ],
    );
    let exe = builder.display().to_string();
    assert_eq!(
        parsed_plist(&plist).unwrap(),
        format!(
            concat!(
                r#"{{"EnvironmentVariables": {{"DAEMON_KEYS_APPLIED": "umask,workdir,user,group,nofile,nice"}}, "#,
                r#""ExitTimeOut": 0, "GroupName": "daemon", "HardResourceLimits": {{"NumberOfFiles": 1024}}, "#,
                r#""KeepAlive": {{"SuccessfulExit": false}}, "Label": "fx_unit_builder", "Nice": 2, "#,
                r#""ProgramArguments": ["{exe}"], "RunAtLoad": true, "SoftResourceLimits": {{"NumberOfFiles": 256}}, "#,
                r#""Umask": 63, "UserName": "daemon", "WorkingDirectory": "/var/empty"}}"#
            ),
            exe = exe
        )
    );
}

/// examples/systemd/echo-notify.service and examples/launchd/daemon-runtime-echo.plist are what the echo
/// example prints, installed as /usr/local/bin/daemon-runtime-echo, and the guide shows the same unit;
/// every other file in examples/systemd says it is hand-written.
#[test]
fn the_example_files_are_the_echo_examples_own_output_or_say_they_are_hand_written() {
    let dir = TempDir::new("unit-examples");
    let echo = copy_as(&echo_example(), dir.path(), "daemon-runtime-echo");
    let installed = |text: String| {
        text.replace(
            &echo.display().to_string(),
            "/usr/local/bin/daemon-runtime-echo",
        )
    };
    let examples = workspace().join("examples");
    let generated = [
        ("systemd/echo-notify.service", "systemd"),
        ("launchd/daemon-runtime-echo.plist", "launchd"),
    ];
    for (file, manager) in generated {
        golden(
            &examples.join(file),
            &installed(printed(&echo, &["unit", manager])),
        );
    }
    // The systemd chapter of the guide shows the same unit.
    let unit = std::fs::read_to_string(examples.join("systemd/echo-notify.service")).unwrap();
    let guide =
        std::fs::read_to_string(workspace().join("daemon-runtime/src/guide/systemd.md")).unwrap();
    assert!(
        guide.contains(&format!("$ daemon-runtime-echo unit\n{unit}```")),
        "daemon-runtime/src/guide/systemd.md does not show examples/systemd/echo-notify.service as it is"
    );
    for entry in std::fs::read_dir(examples.join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("systemd/{}", path.file_name().unwrap().to_string_lossy());
        if generated.iter().any(|(file, _)| *file == name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Hand-written, not generated:"),
            "{name} is neither the echo example's output nor marked hand-written"
        );
    }
}

#[test]
fn install_and_uninstall_without_systemd_say_so_and_exit_3() {
    if Path::new("/run/systemd/system").exists() {
        common::skip(
            "systemd runs here: install would act (tests/unit_systemd.rs drives it in a container)",
        );
        return;
    }
    for action in ["install", "uninstall"] {
        let output = run(Command::new(common::exe("fx_unit_user")).arg(action));
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{action}: {said}");
        assert!(
            said.starts_with(&format!(
                "fx_unit_user: cannot {action}: systemd is not running as PID 1 here (no /run/systemd/system)"
            )),
            "{said}"
        );
    }
}

#[test]
fn the_actions_take_only_their_arguments() {
    let exe = common::exe("fx_unit_user");
    for (args, message) in [
        (
            &["unit", "upstart"][..],
            "unknown service manager \"upstart\": expected systemd or launchd",
        ),
        (
            &["unit", "systemd", "extra"][..],
            "unexpected argument \"extra\" after `unit`",
        ),
        (
            &["install", "--forse"][..],
            "unknown argument \"--forse\": install takes only --force",
        ),
        (
            &["uninstall", "--force"][..],
            "unexpected argument \"--force\" after `uninstall`",
        ),
    ] {
        let output = run(Command::new(exe).args(args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("fx_unit_user: {message}\n")
        );
    }
    // The builder's unit() gets no start to check the keys first: it refuses what start would.
    let output =
        run(Command::new(common::exe("fx_unit_builder")).args(["--workdir", "srv", "systemd"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(
            "fx_unit_builder: invalid daemon configuration: workdir srv is a relative path"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let help = printed(Path::new(exe), &["help"]);
    for action in ["unit", "install", "uninstall"] {
        assert!(help.contains(&format!("\n  {action} ")), "{help}");
    }
}

/// `fx_systemd` in the foreground with `DAEMON_KEYS_APPLIED` set and the shell's umask and directory:
/// what it printed, once it exited or reported ready (then it is stopped).
fn start_checked(applied: &str, umask: &str, cwd: &str, args: &[&str]) -> (Option<i32>, String) {
    let (dir, out) = common::scratch("unit-applied");
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("umask {umask}; cd {cwd}; exec \"$0\" \"$@\""),
            common::exe("fx_systemd"),
        ])
        .args(args)
        .env("DAEMON_KEYS_APPLIED", applied)
        .env("DAEMON_FOREGROUND", "1")
        .env("FIXTURE_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if out.exists() || std::time::Instant::now() > deadline {
            common::kill_and_wait(child.id() as i32);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let output = child.wait_with_output().unwrap();
    drop(dir);
    (code, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_runtime_checks_the_keys_a_unit_says_it_applied_instead_of_applying_them() {
    // As the unit said: the daemon starts (and is stopped here once ready).
    assert_eq!(
        start_checked("umask,workdir", "000", "/", &[]),
        (None, String::new())
    );
    assert_eq!(
        start_checked("workdir", "022", "/tmp", &["--workdir", "/tmp"]),
        (None, String::new())
    );
    // Not as the unit said: refused, with both values, before anything is applied.
    for (applied, umask, cwd, args, said) in [
        (
            "umask",
            "022",
            "/",
            &[][..],
            "DAEMON_KEYS_APPLIED says the service manager applied umask = 0o000, but this process has umask 0o022",
        ),
        (
            "umask,workdir",
            "000",
            "/tmp",
            &[][..],
            "DAEMON_KEYS_APPLIED says the service manager applied workdir = /, but this process has working directory /tmp",
        ),
        (
            "nice",
            "000",
            "/",
            &[][..],
            "DAEMON_KEYS_APPLIED names nice, which the program's keys do not set",
        ),
        (
            "umask,bogus",
            "000",
            "/",
            &[][..],
            "DAEMON_KEYS_APPLIED names \"bogus\", which is no key a service manager applies",
        ),
    ] {
        let (code, stderr) = start_checked(applied, umask, cwd, args);
        assert_eq!(code, Some(1), "{applied}: {stderr}");
        assert!(
            stderr.starts_with(&format!("fx_systemd: invalid daemon configuration: {said}")),
            "{stderr}"
        );
        assert!(
            stderr.contains("the service manager's file and the program's keys disagree (regenerate the file with `fx_systemd unit`)"),
            "{stderr}"
        );
    }
}
