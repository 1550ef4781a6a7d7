//! The builder under systemd (or a test playing its part with a plain socket):
//! `fx_systemd [--pid-file P] [--workdir D] [--chroot D] [--user U] [--manual] [--watchdog-auto]
//! [--timeout-secs N] [--then ACTION]`, where ACTION is
//! - `serve` (default): ready, `STATUS=serving`, report, then wait for SIGTERM and return from main
//!   (the runtime then sends `STOPPING=1`);
//! - `env`: as `serve`, the report also listing the systemd variables still in the environment;
//! - `hang`: ready, then never pings the watchdog and ignores SIGTERM-less life (sleeps);
//! - `fail`: (with `--manual`) fails before ready, as a `main` returning `Err` does;
//! - `extend`: (with `--manual`) asks for 20 s more, takes 3 s, then reports ready;
//! - `reload`: subscribes to the signal API before ready; each Reload is acknowledged with `reloaded()`,
//!   or `reload_failed("bad config")` while the file `/run/fx.fail` exists; Terminate returns from main;
//! - `listen:NAME`: takes the socket-activated TCP listener `NAME`; reports `PID ok` and serves one
//!   connection with `served by PID`, or reports `PID none` / `PID error: MESSAGE`.
//!
//! The report (`$FIXTURE_OUT`) is `PID` and, for `env`, ` NAME=VALUE` for each variable left.
use std::fmt::Write as _;
use std::time::Duration;

use daemon_runtime::{Daemon, Readiness, Watchdog, notify};
use nix::sys::signal::{SigSet, Signal};

fn main() {
    let mut daemon = Daemon::new();
    let mut then = String::from("serve");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&flag));
        daemon = match flag.as_str() {
            "--pid-file" => daemon.pid_file(value()),
            "--workdir" => daemon.workdir(value()),
            "--chroot" => daemon.chroot(value()),
            "--user" => daemon.user(value()),
            "--manual" => daemon.readiness(Readiness::Manual),
            "--watchdog-auto" => daemon.watchdog(Watchdog::Auto),
            "--timeout-secs" => daemon.ready_timeout(Duration::from_secs(
                value().parse().unwrap_or_else(|_| usage(&flag)),
            )),
            "--then" => {
                then = value();
                daemon
            }
            _ => usage(&flag),
        };
    }
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    let running = match daemon.start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("fx_systemd: {error}");
            std::process::exit(1);
        }
    };
    let pid = std::process::id();
    match then.as_str() {
        "fail" => {
            // As the attribute does when main returns Err before ready: report, then release the pid file.
            daemon_runtime::not_ready("cannot bind 127.0.0.1:1: address in use");
            drop(running);
            std::process::exit(1);
        }
        "hang" => {
            daemon_runtime::ready().expect("ready");
            tests::report(&format!("{pid}\n"));
            tests::linger();
            return;
        }
        listen if listen.starts_with("listen:") => {
            let name = &listen["listen:".len()..];
            match daemon_runtime::listen::tcp_listener(name) {
                Ok(Some(listener)) => {
                    daemon_runtime::ready().expect("ready");
                    tests::report(&format!("{pid} ok\n"));
                    if let Ok((mut stream, _)) = listener.accept() {
                        let _ = std::io::Write::write_all(
                            &mut stream,
                            format!("served by {pid}\n").as_bytes(),
                        );
                    }
                }
                Ok(None) => tests::report(&format!("{pid} none\n")),
                Err(error) => tests::report(&format!("{pid} error: {error}\n")),
            }
            tests::linger();
            return;
        }
        "reload" => {
            let signals = daemon_runtime::signals().expect("subscribe");
            daemon_runtime::ready().expect("ready");
            tests::report(&format!("{pid}\n"));
            for signal in signals {
                match signal {
                    daemon_runtime::Signal::Reload => {
                        if std::path::Path::new("/run/fx.fail").exists() {
                            daemon_runtime::signal::reload_failed("bad config").expect("ack");
                        } else {
                            daemon_runtime::signal::reloaded().expect("ack");
                        }
                    }
                    daemon_runtime::Signal::Terminate(_) => break,
                    _ => {}
                }
            }
            drop(running);
            return;
        }
        "extend" => {
            notify::extend_timeout(Duration::from_secs(20)).expect("extend");
            std::thread::sleep(Duration::from_secs(3));
        }
        _ => {}
    }
    daemon_runtime::ready().expect("ready");
    notify::set_status("serving").expect("status");
    let mut report = pid.to_string();
    if then == "env" {
        for name in [
            "NOTIFY_SOCKET",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
        ] {
            if let Some(value) = std::env::var_os(name) {
                let _ = write!(report, " {name}={}", value.to_string_lossy());
            }
        }
    }
    // SIGTERM is waited for, not fatal (the runtime's watchdog thread blocks every signal).
    term.thread_block().expect("block SIGTERM");
    tests::report(&format!("{report}\n"));
    let _ = term.wait();
    drop(running);
}

fn usage(flag: &str) -> ! {
    eprintln!("fx_systemd: bad or incomplete argument {flag}");
    std::process::exit(2)
}
