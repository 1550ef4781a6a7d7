//! Daemonizing with the builder, configured at run time from the command line:
//!
//! ```text
//! cargo run --example cli -- --pid-file /tmp/cli.pid --log /tmp/cli.log [--foreground]
//! tail /tmp/cli.log; kill "$(cat /tmp/cli.pid)"
//! ```
//!
//! The daemon writes a heartbeat line to its log every second. `--foreground` (or `DAEMON_FOREGROUND=1`)
//! keeps it attached to the terminal, for debugging.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use daemon_runtime::Daemon;

const USAGE: &str = "usage: cli [--pid-file PATH] [--log PATH] [--foreground]";

struct Args {
    pid_file: Option<PathBuf>,
    log: Option<PathBuf>,
    foreground: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        pid_file: None,
        log: None,
        foreground: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pid-file" => {
                parsed.pid_file = Some(args.next().ok_or("--pid-file needs a path")?.into());
            }
            "--log" => parsed.log = Some(args.next().ok_or("--log needs a path")?.into()),
            "--foreground" => parsed.foreground = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("cli: {message}");
            return ExitCode::from(2);
        }
    };
    let mut daemon = Daemon::new().umask(0o027).foreground(args.foreground);
    if let Some(path) = &args.pid_file {
        daemon = daemon.pid_file(path);
    }
    if let Some(path) = &args.log {
        daemon = daemon.stdout(path).stderr(path);
    }
    // In the launcher, start() exits 0 once the daemon is ready, or returns the error.
    let running = match daemon.start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("cli: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "cli: running as pid {} (pid file: {:?})",
        std::process::id(),
        running.pid_file()
    );
    for beat in 1.. {
        std::thread::sleep(Duration::from_secs(1));
        println!("cli: heartbeat {beat}");
    }
    ExitCode::SUCCESS
}
