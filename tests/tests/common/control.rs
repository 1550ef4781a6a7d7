//! The daemon `fx_control` (`Daemon::commands(true)`) and its actions, for control.rs and attacks.rs.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::{LiveDaemon, TempDir, launch, scratch, start, stderr_text};

/// One daemon's files: its scratch directory, pid file and report.
pub(crate) struct Setup {
    pub(crate) dir: TempDir,
    pub(crate) pid_file: PathBuf,
    pub(crate) out: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Setup {
    pub(crate) fn new(tag: &str) -> Setup {
        let (dir, out) = scratch(tag);
        let pid_file = dir.join("app.pid");
        Setup {
            dir,
            pid_file,
            out,
            env: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, key: &'static str, value: &str) -> Setup {
        self.env.push((key, value.to_string()));
        self
    }

    /// `fx_control ARGS...` with this setup's environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = super::fixture("fx_control", &self.out);
        command.args(args).env("FX_PID_FILE", &self.pid_file);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Starts the daemon (`fx_control start ARGS`) and returns it.
    pub(crate) fn start(&self, args: &[&str]) -> LiveDaemon {
        let _ = std::fs::remove_file(&self.out);
        start(self.command(args), &self.out)
    }

    /// Runs an action to its end.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        launch(self.command(args))
    }

    pub(crate) fn lock_file(&self) -> PathBuf {
        let mut path = self.pid_file.clone().into_os_string();
        path.push(".lock");
        path.into()
    }
}

pub(crate) fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

pub(crate) fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The exit code and the message (stdout, else stderr) of an action, for assertions.
pub(crate) fn result(output: &Output) -> (i32, String) {
    let text = stdout_text(output) + &stderr_text(output);
    (code(output), text.trim().to_string())
}
