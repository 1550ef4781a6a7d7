//! The blocking signal API: subscribes before a manual `ready()`, logs every event to stdout
//! (`fx_signals.log` in the launcher's directory, where the pid file `fx_signals.pid` is too), each line
//! prefixed with the pid; acknowledges reloads; returns from `main` on SIGTERM or SIGINT. With
//! `FIXTURE_MODE=slow-reload` each reload takes 2 s before it is acknowledged (`reloaded N` then).
use daemon_runtime::{Daemon, Readiness, Signal};

fn main() -> std::io::Result<()> {
    let daemon = Daemon::new()
        .readiness(Readiness::Manual)
        .pid_file(tests::launch_dir_file("fx_signals.pid"))
        .stdout(tests::launch_dir_file("fx_signals.log"));
    let _running = tests::start_or_exit(daemon, "fx_signals");
    let pid = std::process::id();
    let signals = daemon_runtime::signals()?.with_user1()?;
    println!("{pid} subscribed");
    daemon_runtime::ready()?;
    let slow = std::env::var("FIXTURE_MODE").as_deref() == Ok("slow-reload");
    let mut reloads = 0;
    for signal in signals {
        match signal {
            Signal::Reload => {
                reloads += 1;
                println!("{pid} reload {reloads}");
                if slow {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                }
                daemon_runtime::signal::reloaded()?;
                if slow {
                    println!("{pid} reloaded {reloads}");
                }
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
