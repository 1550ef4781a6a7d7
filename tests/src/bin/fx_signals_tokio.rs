//! The async signal API beside `tokio::signal` (SIGHUP and `ctrl_c()`) and a `signal-hook` iterator, in
//! one program: every one of them must see the same SIGHUP and SIGINT. Logs to `fx_signals_tokio.log` (pid
//! file `fx_signals_tokio.pid`), in the launcher's directory; returns from `main` on SIGINT once all three
//! have seen it.
use std::sync::mpsc;
use std::time::Duration;

use daemon_runtime::{Daemon, Readiness, Signal};
use tokio::signal::unix::{SignalKind, signal};

fn main() -> std::io::Result<()> {
    let daemon = Daemon::new()
        .readiness(Readiness::Manual)
        .pid_file(tests::launch_dir_file("fx_signals_tokio.pid"))
        .stdout(tests::launch_dir_file("fx_signals_tokio.log"));
    let _running = tests::start_or_exit(daemon, "fx_signals_tokio");
    // The runtime's threads start in the daemon, after the forks.
    tokio::runtime::Runtime::new()?.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let pid = std::process::id();
    let mut ours = daemon_runtime::signals()?;
    let mut hangup = signal(SignalKind::hangup())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut hook = signal_hook::iterator::Signals::new([nix::libc::SIGHUP, nix::libc::SIGINT])?;
    let (hook_saw, hook_seen) = mpsc::channel();
    std::thread::spawn(move || {
        for number in hook.forever() {
            println!("{pid} signal-hook {number}");
            let _ = hook_saw.send(number);
        }
    });
    println!("{pid} subscribed");
    daemon_runtime::ready()?;
    let mut ctrl_c_seen = false;
    loop {
        tokio::select! {
            signal = ours.recv() => match signal? {
                Signal::Reload => {
                    println!("{pid} ours reload");
                    daemon_runtime::signal::reloaded()?;
                }
                Signal::Terminate(which) => {
                    println!("{pid} ours terminate {which:?}");
                    break;
                }
                other => println!("{pid} ours {other:?}"),
            },
            _ = hangup.recv() => println!("{pid} tokio hangup"),
            result = &mut ctrl_c, if !ctrl_c_seen => {
                result?;
                ctrl_c_seen = true;
                println!("{pid} tokio ctrl_c");
            }
        }
    }
    // The others may not have had their turn yet: wait (boundedly) until each has seen SIGINT.
    if !ctrl_c_seen
        && tokio::time::timeout(Duration::from_secs(10), &mut ctrl_c)
            .await
            .is_ok()
    {
        println!("{pid} tokio ctrl_c");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Ok(number) =
        hook_seen.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if number == nix::libc::SIGINT {
            break;
        }
    }
    println!("{pid} main returns");
    Ok(())
}
