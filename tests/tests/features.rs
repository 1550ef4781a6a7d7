//! The runtime's cargo features, as a user's crate sees them: the workspace builds daemon-runtime with
//! every feature (the examples and these tests enable them), so the default build is only ever compiled
//! here, in a crate of its own outside the workspace, by the real `cargo`.
//!
//! A program that loops forever builds with the default features and runs as a daemon; `commands = true`
//! without the `control` feature is a compile error on the key that names the feature (and nothing else).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::TempDir;

/// A crate of its own depending on this workspace's daemon-runtime with `features`, whose `main.rs` is
/// `source`; built with a target directory kept between runs (the dependencies compile once).
fn build(tag: &str, features: &str, source: &str) -> (Output, TempDir) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().expect("workspace");
    let dir = TempDir::new(tag);
    std::fs::create_dir_all(dir.join("src")).expect("src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"user-{tag}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\ndaemon-runtime = {{ path = \"{}\", features = [{features}] }}\n\n[workspace]\n",
            workspace.join("daemon-runtime").display()
        ),
    )
    .expect("Cargo.toml");
    // The workspace's own lock: the same versions, nothing to fetch.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("Cargo.lock");
    std::fs::write(dir.join("src/main.rs"), source).expect("main.rs");
    let target: PathBuf = workspace.join("target/feature-builds");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    (output, dir)
}

#[test]
fn the_default_features_build_and_run_a_program_that_loops_forever() {
    // The first program a user writes, with the default features (and `commands = false` written out,
    // which needs no feature): it builds, daemonizes, runs its body, and a start after it was killed
    // takes over the files it left.
    let (dir, _out) = common::scratch("feature-default-run");
    let (pid_file, log) = (dir.join("app.pid"), dir.join("out.log"));
    let (output, build_dir) = build(
        "default",
        "",
        &format!(
            "use daemon_runtime::daemon;\n\n\
             #[daemon(umask = 0o027, pid_file = {:?}, stdout = {:?}, commands = false)]\n\
             fn main() {{\n    println!(\"serving\");\n    loop {{\n        \
             std::thread::sleep(std::time::Duration::from_secs(60));\n    }}\n}}\n",
            pid_file.display().to_string(),
            log.display().to_string()
        ),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(build_dir);
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/feature-builds/debug/user-default");
    for round in 0..2 {
        let started = common::launch(Command::new(&program));
        assert!(
            started.status.success(),
            "round {round}: {}",
            common::stderr_text(&started)
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        let _daemon = Killed(pid);
        assert!(common::is_alive(pid), "round {round}");
        // Detached: in a session of its own, whose leader (the intermediate) is gone.
        let session: i32 = common::stat_fields(pid)[3].parse().expect("session");
        assert_ne!(session, nix::unistd::getsid(None).expect("sid").as_raw());
        assert_ne!(
            session, pid,
            "round {round}: a session leader could acquire a terminal"
        );
        let wanted = "serving\n".repeat(round + 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&log).unwrap_or_default() != wanted
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&log).expect("log"), wanted);
        // Killed, as SIGTERM ends a program that does not handle it: the next round's start takes over.
        common::kill_and_wait(pid);
    }
}

/// A daemon the test started: killed (and so never left behind) when the test ends, passing or not.
struct Killed(i32);

impl Drop for Killed {
    fn drop(&mut self) {
        common::kill_and_wait(self.0);
    }
}

#[test]
fn a_control_key_without_the_control_feature_is_one_error_on_the_key() {
    let (output, _dir) = build(
        "no-control",
        "",
        "use daemon_runtime::daemon;\n\n\
         #[daemon(pid_file = \"/tmp/user-no-control.pid\", commands = true)]\n\
         fn main() {}\n",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "error: `commands` needs daemon-runtime's `control` feature: in Cargo.toml, \
             `daemon-runtime = { version = \"...\", features = [\"control\"] }`"
        ),
        "{stderr}"
    );
    // On the key itself (line 3, column 49), and the only error: no "no method named `commands`".
    assert!(stderr.contains("src/main.rs:3:49"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}"); // the key's, and "could not compile"
    // With the feature, the same program builds.
    let (output, _dir) = build(
        "control",
        "\"control\"",
        "use daemon_runtime::daemon;\n\n\
         #[daemon(pid_file = \"/tmp/user-control.pid\", commands = true)]\n\
         fn main() {}\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
