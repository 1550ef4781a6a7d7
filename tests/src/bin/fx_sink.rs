//! A daemon whose stdout and stderr go where the command line says (`--stdout journal`, `--stderr
//! syslog:local3`, or a path), for the tests of the journal and syslog sinks:
//! `fx_sink [ACTION] [--stdout OUT] [--stderr OUT] [--chroot DIR] [--user U] [--pid-file P]
//! [--foreground] [--lines N] [--interval-ms MS] [--wait-for PATH] [--child] [--then wait|panic|exit]`,
//! where ACTION (a
//! control action such as `reopen-logs`) turns `commands` on.
//!
//! Once started it reports its pid to `$FIXTURE_OUT` (read before the chroot) and writes, in order: on
//! stdout `plain stdout line` and `<7>debug line`; on stderr `<3>error line`, `<4>warning line` and
//! `plain stderr line`; a worker forked without exec writes `worker line from PID` on stderr and exits;
//! with `--child`, `sh -c 'echo child line >&2'` runs; with `--wait-for PATH`, it waits until PATH
//! exists (checked every 10 ms, for 20 s at most); with `--lines N`, `line K of N` for K in 1..=N on
//! stderr at `<6>`, one every MS milliseconds (default 10); then `done` on stderr (at `<5>`), and
//! `--then`: `wait` (the default: stay for `$FIXTURE_LIFE` seconds), `panic` (panics with `fixture
//! panic`), or `exit` (returns). Before the lines, with `--long N`: one line `<6>long ` and N bytes `L`
//! then ` END`, in one write; with `--split N`: N bytes `S` without a newline, 300 ms later
//! `<0>EMERG tail` and the newline (a line whose end comes late, whose middle looks like a prefix).
use std::io::Write;
use std::time::Duration;

use daemon_runtime::Daemon;

fn usage(flag: &str) -> ! {
    eprintln!("fx_sink: bad or incomplete argument {flag}");
    std::process::exit(2)
}

fn main() {
    let mut daemon = Daemon::new();
    let (mut lines, mut interval, mut child, mut then) = (0u32, 10u64, false, "wait".to_string());
    let mut wait_for: Option<std::path::PathBuf> = None;
    let (mut long, mut split) = (0usize, 0usize);
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|first| !first.starts_with("--")) {
        args.next();
        daemon = daemon.commands(true);
    }
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&flag));
        daemon = match flag.as_str() {
            "--stdout" => daemon.stdout(value()),
            "--stderr" => daemon.stderr(value()),
            "--chroot" => daemon.chroot(value()),
            "--user" => daemon.user(value()),
            "--pid-file" => daemon.pid_file(value()),
            "--foreground" => daemon.foreground(true),
            "--lines" => {
                lines = value().parse().unwrap_or_else(|_| usage(&flag));
                daemon
            }
            "--interval-ms" => {
                interval = value().parse().unwrap_or_else(|_| usage(&flag));
                daemon
            }
            "--wait-for" => {
                wait_for = Some(value().into());
                daemon
            }
            "--long" => {
                long = value().parse().unwrap_or_else(|_| usage(&flag));
                daemon
            }
            "--split" => {
                split = value().parse().unwrap_or_else(|_| usage(&flag));
                daemon
            }
            "--child" => {
                child = true;
                daemon
            }
            "--then" => {
                then = value();
                daemon
            }
            _ => usage(&flag),
        };
    }
    let out = tests::out_path();
    let _running = tests::start_or_exit(daemon, "fx_sink");
    if let Some(out) = &out {
        tests::report_at(out, &format!("{}\n", std::process::id()));
    }
    println!("plain stdout line");
    println!("<7>debug line");
    eprintln!("<3>error line");
    eprintln!("<4>warning line");
    eprintln!("plain stderr line");
    let _ = std::io::stdout().flush();
    // SAFETY: the fixture runs one thread here (no runtime thread is configured), so the child may run
    // Rust code freely.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            eprintln!("worker line from {}", std::process::id());
            // SAFETY: _exit ends the worker at once.
            unsafe { nix::libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        Err(errno) => eprintln!("cannot fork a worker: {errno}"),
    }
    if child {
        let _ = std::process::Command::new("sh")
            .args(["-c", "echo child line >&2"])
            .status();
    }
    if long > 0 {
        let line = format!("<6>long {} END\n", "L".repeat(long));
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    if split > 0 {
        let _ = std::io::stderr().write_all("S".repeat(split).as_bytes());
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::io::stderr().write_all(b"<0>EMERG tail\n");
    }
    if let Some(path) = &wait_for {
        for _ in 0..2000 {
            if path.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for k in 1..=lines {
        eprintln!("<6>line {k} of {lines}");
        if interval > 0 {
            std::thread::sleep(Duration::from_millis(interval));
        }
    }
    eprintln!("<5>done");
    match then.as_str() {
        "panic" => panic!("fixture panic"),
        "exit" => {}
        _ => tests::linger(),
    }
}
