//! The builder with the privilege and log keys, configured from the command line, for
//! tests/tests/privileges.rs and tests/tests/logs.rs:
//! `fx_privlogs [--user U] [--group G] [--chroot D] [--workdir D] [--stdout P] [--stderr P] [--pid-file P]
//! [--keep-cap NAME]... [--ambient] [--no-core-dumps] [--no-new-privs] [--nofile SOFT:HARD] [--nice N]
//! [--env clean|NAME,NAME] [--reopen-on SIGUSR1|SIGHUP|SIGTERM] [--privileged-bind ADDR |
//! --privileged-fail MESSAGE | --privileged-thread] [--then ACTION]`. `--privileged-thread`: the privileged
//! code starts a thread (sleeping 30 s) and returns without joining it.
//!
//! ACTION: `wait` (report `PID` and stay), `serve` (report, then answer each connection to the privileged
//! listener with `uid=N`), `bind ADDR` (bind ADDR in the body, report `PID bound=ok` or `PID bound=ERROR`),
//! `log COUNT` (write COUNT numbered lines, one a millisecond, alternately to stdout and stderr, then
//! report `PID done`; with `--reopen-on SIGNAL` the runtime reopens the log files on that signal), `reopen` (report, then on each SIGUSR1 reopen and
//! report `PID reopened N ok` or `PID reopened N error: MESSAGE`).
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use daemon_runtime::{Daemon, Env};
use nix::sys::signal::{SigSet, Signal};

fn main() {
    // Read before `--env` empties the environment.
    let out = tests::out_path();
    let mut daemon = Daemon::new();
    let mut then = vec![String::from("wait")];
    let mut bind = None;
    let mut fail = None;
    let mut thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&flag));
        daemon = match flag.as_str() {
            "--user" => daemon.user(value()),
            "--group" => daemon.group(value()),
            "--chroot" => daemon.chroot(value()),
            "--workdir" => daemon.workdir(value()),
            "--stdout" => daemon.stdout(value()),
            "--stderr" => daemon.stderr(value()),
            "--pid-file" => daemon.pid_file(value()),
            "--keep-cap" => daemon.keep_caps([value()]),
            "--ambient" => daemon.ambient_caps(true),
            "--no-core-dumps" => daemon.core_dumps(false),
            "--no-new-privs" => daemon.no_new_privs(true),
            "--nofile" => {
                let text = value();
                let (soft, hard) = text.split_once(':').unwrap_or_else(|| usage(&flag));
                let number = |s: &str| s.parse().unwrap_or_else(|_| usage(&flag));
                daemon.nofile(number(soft), number(hard))
            }
            "--nice" => daemon.nice(value().parse().unwrap_or_else(|_| usage(&flag))),
            "--env" => match value().as_str() {
                "clean" => daemon.env(Env::Clean),
                names => daemon.env(Env::keep(names.split(','))),
            },
            "--reopen-on" => match value().as_str() {
                "SIGUSR1" => daemon.reopen_logs_on(daemon_runtime::Signal::User1),
                "SIGHUP" => daemon.reopen_logs_on(daemon_runtime::Signal::Reload),
                "SIGTERM" => daemon.reopen_logs_on(daemon_runtime::Signal::Terminate(
                    daemon_runtime::signal::Term::Sigterm,
                )),
                _ => usage(&flag),
            },
            "--privileged-bind" => {
                bind = Some(value());
                daemon
            }
            "--privileged-thread" => {
                thread = true;
                daemon
            }
            "--privileged-fail" => {
                fail = Some(value());
                daemon
            }
            "--then" => {
                then = vec![value()];
                if matches!(then[0].as_str(), "bind" | "log") {
                    then.push(value());
                }
                daemon
            }
            _ => usage(&flag),
        };
    }
    let (running, listener) = if let Some(addr) = bind {
        match daemon.privileged(|| TcpListener::bind(&addr)).start() {
            Ok((running, listener)) => (running, Some(listener)),
            Err(error) => exit(&error),
        }
    } else if thread {
        let code = || {
            std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
            Ok::<(), String>(())
        };
        match daemon.privileged(code).start() {
            Ok((running, ())) => (running, None),
            Err(error) => exit(&error),
        }
    } else if let Some(message) = fail {
        match daemon.privileged(|| Err::<(), _>(message)).start() {
            Ok((running, ())) => (running, None),
            Err(error) => exit(&error),
        }
    } else {
        match daemon.start() {
            Ok(running) => (running, None),
            Err(error) => exit(&error),
        }
    };
    let pid = std::process::id();
    match then[0].as_str() {
        "serve" => {
            let listener = listener.expect("--then serve needs --privileged-bind");
            tests::report(&format!("{pid}\n"));
            for stream in listener.incoming().flatten() {
                let uid = nix::unistd::Uid::effective();
                let _ = (&stream).write_all(format!("uid={uid}\n").as_bytes());
            }
        }
        "env" => {
            let mut names: Vec<String> = std::env::vars_os()
                .map(|(name, _)| name.to_string_lossy().into_owned())
                .collect();
            names.sort();
            if let Some(out) = &out {
                tests::report_at(out, &format!("{pid} {}\n", names.join(",")));
            }
            tests::linger();
        }
        "bind" => {
            let result = match TcpListener::bind(&then[1]) {
                Ok(_) => "ok".to_string(),
                Err(error) => error.to_string(),
            };
            tests::report(&format!("{pid} bound={result}\n"));
            tests::linger();
        }
        "log" => {
            // The runtime reopens the files itself (`--reopen-on`).
            let count: usize = then[1].parse().unwrap_or_else(|_| usage("--then log"));
            tests::report(&format!("{pid}\n"));
            write_lines(count);
            tests::report(&format!("{pid} done\n"));
            tests::linger();
        }
        "reopen" => {
            tests::report(&format!("{pid}\n"));
            on_sigusr1(move |n| {
                let outcome = match daemon_runtime::logs::reopen() {
                    Ok(()) => "ok".to_string(),
                    Err(error) => format!("error: {error}"),
                };
                eprintln!("after reopen {n}");
                tests::report(&format!("{pid} reopened {n} {outcome}\n"));
            });
            tests::linger();
        }
        _ => {
            tests::report(&format!("{pid}\n"));
            tests::linger();
        }
    }
    drop(running);
}

/// Lines of a fixed length (a torn one shows), each written with one `write(2)`: `out 000042 ...`.
fn write_lines(count: usize) {
    for n in 0..count {
        let stream = if n % 2 == 0 { "out" } else { "err" };
        let line = format!("{stream} {n:06} {}\n", "x".repeat(60));
        let written = if n % 2 == 0 {
            std::io::stdout().write_all(line.as_bytes())
        } else {
            std::io::stderr().write_all(line.as_bytes())
        };
        written.expect("log line");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `action` (with the count so far) on a thread for each SIGUSR1. SIGUSR1 is blocked in this thread
/// before the other starts (it inherits the mask), so only `sigwait` receives it.
fn on_sigusr1(action: impl Fn(u32) + Send + 'static) {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.thread_block().expect("block SIGUSR1");
    std::thread::spawn(move || {
        let mut n = 0;
        while set.wait().is_ok() {
            n += 1;
            action(n);
        }
    });
}

fn exit(error: &daemon_runtime::Error) -> ! {
    eprintln!("fx_privlogs: {error}");
    std::process::exit(1)
}

fn usage(flag: &str) -> ! {
    eprintln!("fx_privlogs: bad or incomplete argument {flag}");
    std::process::exit(2)
}
