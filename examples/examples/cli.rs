//! A daemon with its own command line (clap subcommands) and the builder's control actions:
//!
//! ```text
//! cargo run --example cli -- start            # returns once the daemon is ready
//! cargo run --example cli -- status           # running (pid N), exit 0; --json for a JSON line
//! cargo run --example cli -- reload           # SIGHUP; waits for the daemon's answer
//! cargo run --example cli -- restart          # stop, then start
//! cargo run --example cli -- stop             # SIGTERM, then SIGKILL after 10 s (--retry to change)
//! cargo run --example cli -- run              # in the foreground, for debugging (Ctrl-C stops it)
//! ```
//!
//! Options (before the subcommand): `--pid-file PATH` (default `/tmp/daemon-runtime-cli.pid`) and `--log
//! PATH` (default `/tmp/daemon-runtime-cli.log`). The daemon writes a heartbeat line to its log every
//! second, answers `reload` through the signal API (`reloaded()`), and returns from `main` on SIGTERM
//! (which removes its pid file). Exit codes are the LSB init-script ones (see `daemon_runtime::control::Outcome`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use daemon_runtime::{Daemon, Readiness, Signal};

#[derive(Parser)]
#[command(
    name = "cli",
    about = "A heartbeat daemon, controlled from its own command line"
)]
struct Cli {
    /// The pid file (its lock, `PATH.lock`, is what the actions find the daemon by).
    #[arg(long, default_value = "/tmp/daemon-runtime-cli.pid")]
    pid_file: PathBuf,
    /// Where the daemon's stdout and stderr go.
    #[arg(long, default_value = "/tmp/daemon-runtime-cli.log")]
    log: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the daemon; returns once it is ready.
    Start,
    /// Stop the running daemon.
    Stop {
        /// The stop schedule, as start-stop-daemon's --retry.
        #[arg(long, default_value = "TERM/10/KILL/5")]
        retry: String,
    },
    /// Say whether the daemon runs (exit 0 running, 1 dead with a pid file, 3 not running, 4 unknown).
    Status {
        /// One line of JSON: pid, uptime, user.
        #[arg(long)]
        json: bool,
    },
    /// Ask the daemon to reload, and wait for its answer.
    Reload,
    /// Stop the running daemon, then start a new one.
    Restart,
    /// Run in the foreground (no fork, stdio kept), for debugging.
    Run,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ready only once subscribed to signals: a `stop` or `reload` right after `start` is an event, never a
    // default action.
    let daemon = Daemon::new()
        .umask(0o027)
        .readiness(Readiness::Manual)
        .pid_file(&cli.pid_file)
        .stdout(&cli.log)
        .stderr(&cli.log);
    let running = match cli.command {
        Command::Status { json } => {
            let outcome = daemon.status();
            if json {
                println!("{}", outcome.to_json());
                return ExitCode::from(outcome.code());
            }
            outcome.exit()
        }
        Command::Stop { retry } => daemon.stop_retry(retry).stop().exit(),
        Command::Reload => daemon.reload().exit(),
        Command::Restart => daemon.restart().unwrap_or_else(|outcome| outcome.exit()),
        Command::Start | Command::Run => {
            let daemon = daemon.foreground(matches!(cli.command, Command::Run));
            // In the launcher, start() exits 0 once the daemon is ready, or returns the error.
            match daemon.start() {
                Ok(running) => running,
                Err(error) => {
                    eprintln!("cli: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match serve(&running) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cli: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon's life: a heartbeat every second; reloads answered; SIGTERM or SIGINT ends it.
fn serve(running: &daemon_runtime::Running) -> std::io::Result<()> {
    // The daemon logs to stderr, which is the `--log` file (or the terminal with `run`).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut signals = daemon_runtime::signals()?;
    daemon_runtime::ready()?;
    log::info!(
        "running as pid {} (pid file: {:?})",
        std::process::id(),
        running.pid_file()
    );
    let mut beat = 0;
    loop {
        match signals.recv_timeout(Duration::from_secs(1)) {
            None => {
                beat += 1;
                log::info!("heartbeat {beat}");
            }
            Some(Signal::Reload) => {
                // A real daemon rereads its configuration here, and answers `reload_failed(why)` if it
                // cannot: `cli reload` then exits 1 with that message.
                log::info!("reloaded");
                daemon_runtime::signal::reloaded()?;
            }
            Some(Signal::Terminate(_)) => {
                log::info!("stopping");
                return Ok(());
            }
            Some(_) => {}
        }
    }
}
