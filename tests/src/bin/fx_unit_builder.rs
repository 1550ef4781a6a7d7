//! The builder's `unit`, for key combinations the attribute fixtures do not cover:
//! `fx_unit_builder [FLAGS] (systemd|launchd)` prints the file and exits with the outcome's code. FLAGS:
//! `--pid-file P`, `--stdout P`, `--stderr P`, `--user U`, `--group G`, `--workdir D`, `--chroot D`,
//! `--umask OCTAL`, `--nofile SOFT HARD`, `--nice N`, `--keep-caps a,b`, `--ambient`, `--no-new-privs`,
//! `--no-core-dumps`, `--env clean|KEEP,NAMES`, `--commands`, `--stop-retry S`, `--watchdog-auto`,
//! `--manual`, `--ready-timeout SECS`, `--privileged`, `--reopen-on-usr1`, `--keep-fd N`.
use std::time::Duration;

use daemon_runtime::control::ServiceManager;
use daemon_runtime::{Daemon, Env, Readiness, Signal, Watchdog};

fn main() {
    let mut daemon = Daemon::new();
    let mut privileged = false;
    let mut args = std::env::args().skip(1).peekable();
    let mut manager = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&flag));
        daemon = match flag.as_str() {
            "--pid-file" => daemon.pid_file(value()),
            "--stdout" => daemon.stdout(value()),
            "--stderr" => daemon.stderr(value()),
            "--user" => daemon.user(value()),
            "--group" => daemon.group(value()),
            "--workdir" => daemon.workdir(value()),
            "--chroot" => daemon.chroot(value()),
            "--umask" => {
                daemon.umask(u32::from_str_radix(&value(), 8).unwrap_or_else(|_| usage(&flag)))
            }
            "--nofile" => {
                let soft = number(&value(), &flag);
                let hard = number(&value(), &flag);
                daemon.nofile(soft, hard)
            }
            "--nice" => daemon.nice(value().parse().unwrap_or_else(|_| usage(&flag))),
            "--keep-caps" => {
                daemon.keep_caps(value().split(',').map(str::to_string).collect::<Vec<_>>())
            }
            "--ambient" => daemon.ambient_caps(true),
            "--no-new-privs" => daemon.no_new_privs(true),
            "--no-core-dumps" => daemon.core_dumps(false),
            "--env" => match value().as_str() {
                "clean" => daemon.env(Env::Clean),
                names => daemon.env(Env::keep(names.split(','))),
            },
            "--commands" => daemon.commands(true),
            "--stop-retry" => daemon.stop_retry(value()),
            "--watchdog-auto" => daemon.watchdog(Watchdog::Auto),
            "--manual" => daemon.readiness(Readiness::Manual),
            "--ready-timeout" => daemon.ready_timeout(Duration::from_secs(number(&value(), &flag))),
            "--privileged" => {
                privileged = true;
                daemon
            }
            "--reopen-on-usr1" => daemon.reopen_logs_on(Signal::User1),
            "--keep-fd" => daemon.keep_fds([value().parse().unwrap_or_else(|_| usage(&flag))]),
            word => {
                manager = Some(
                    word.parse::<ServiceManager>()
                        .unwrap_or_else(|_| usage(word)),
                );
                daemon
            }
        };
    }
    let manager = manager.unwrap_or_else(|| usage("(no service manager)"));
    let outcome = if privileged {
        daemon.privileged(|| Ok::<(), String>(())).unit(manager)
    } else {
        daemon.unit(manager)
    };
    outcome.exit();
}

fn number(text: &str, flag: &str) -> u64 {
    text.parse().unwrap_or_else(|_| usage(flag))
}

fn usage(flag: &str) -> ! {
    eprintln!("fx_unit_builder: bad or incomplete argument {flag}");
    std::process::exit(2)
}
