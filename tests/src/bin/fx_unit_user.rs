//! The keys systemd applies itself in the unit the program derives from them (`fx_unit_user unit`): the
//! user (`daemon`), the capability it keeps as an ambient one, `no_new_privs`, the working directory, the
//! umask and the limits, with the pid and log files in directories systemd makes for that user. Binding
//! 127.0.0.1:81 as `daemon` proves the capability arrived. Reloads and stops as `fx_unit_all`.
use std::net::TcpListener;
use std::time::Duration;

use daemon_runtime::{Signal, daemon};

#[daemon(
    umask = 0o077,
    workdir = "/var/lib/fx_unit_user",
    pid_file = "/run/fx_unit_user/fx.pid",
    stderr = "/var/log/fx_unit_user/err.log",
    user = "daemon",
    keep_caps = ["net_bind_service"],
    ambient_caps = true,
    no_new_privs = true,
    nofile = 2048,
    nice = 3,
    core_dumps = false,
    readiness = "manual",
    commands = true,
    stop_retry = "TERM/5/KILL/2"
)]
fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:81")?;
    let signals = daemon_runtime::signals()?;
    daemon_runtime::ready()?;
    eprintln!("serving on {}", listener.local_addr()?);
    for signal in signals {
        match signal {
            Signal::Reload => {
                eprintln!("reloaded");
                daemon_runtime::signal::reloaded()?;
            }
            Signal::Terminate(_) => {
                std::thread::sleep(Duration::from_secs(1));
                eprintln!("stopping");
                return Ok(());
            }
            _ => {}
        }
    }
    Ok(())
}
