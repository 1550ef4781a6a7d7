//! The blocking signal API under `#[daemon]`: subscribes before a manual `ready()`, logs every event to
//! stdout (`fx_signals.log` in the launcher's directory, where the pid file `fx_signals.pid` is too), each
//! line prefixed with the pid; acknowledges reloads; returns from `main` on SIGTERM or SIGINT.
use daemon_runtime::{daemon, Signal};

#[daemon(
    ready = "manual",
    pid_file = "fx_signals.pid",
    stdout = "fx_signals.log"
)]
fn main() -> std::io::Result<()> {
    let pid = std::process::id();
    let signals = daemon_runtime::signals()?.with_user1()?;
    println!("{pid} subscribed");
    daemon_runtime::ready()?;
    let mut reloads = 0;
    for signal in signals {
        match signal {
            Signal::Reload => {
                reloads += 1;
                println!("{pid} reload {reloads}");
                daemon_runtime::reloaded()?;
            }
            Signal::Terminate(which) => {
                println!("{pid} terminate {which:?}");
                break;
            }
            other => println!("{pid} {other:?}"),
        }
    }
    println!("{pid} main returns");
    Ok(())
}
