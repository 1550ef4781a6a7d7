//! Every key of the attribute, for the unit the program derives from them (`fx_unit_all unit`,
//! `fx_unit_all install`) under a real systemd. The privileged code binds 127.0.0.1:80 as root; the daemon
//! then serves as nobody in the chroot `/srv/fx_unit_all` (working directory `/data` inside it, log files
//! in `/log`, where it can reopen them), keeping `CAP_NET_BIND_SERVICE`. Its stdout says where it listens
//! and the names in its environment. A reload is acknowledged with `reloaded` on stdout; on SIGTERM it
//! takes a second to finish, says `stopping`, and returns. The runtime applies the identity here
//! (privileged code, a chroot).
use std::net::TcpListener;
use std::time::Duration;

use daemon_runtime::{Signal, daemon};

/// Binds the port only root may bind.
fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:80")
}

#[daemon(
    umask = 0o027,
    workdir = "/data",
    pid_file = "/run/fx_unit_all/fx.pid",
    stdout = "/srv/fx_unit_all/log/out.log",
    stderr = "/srv/fx_unit_all/log/err.log",
    user = "nobody",
    group = "nogroup",
    chroot = "/srv/fx_unit_all",
    keep_fds = [3],
    readiness = "manual",
    ready_timeout = 20,
    watchdog = "auto",
    privileged = bind,
    keep_caps = ["net_bind_service"],
    ambient_caps = false,
    core_dumps = false,
    no_new_privs = true,
    nofile = [1024, 4096],
    nice = 5,
    env = "clean",
    commands = true,
    stop_retry = "TERM/5/KILL/2",
    reopen_logs_on = "SIGUSR1",
    crate = "::daemon_runtime"
)]
fn main(listener: TcpListener) -> std::io::Result<()> {
    serve(&listener)
}

/// Ready once subscribed to signals; answers reloads, returns a second after SIGTERM.
fn serve(listener: &TcpListener) -> std::io::Result<()> {
    let signals = daemon_runtime::signals()?;
    daemon_runtime::ready()?;
    println!("serving on {}", listener.local_addr()?);
    let names: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    println!("environment: {}", names.join(" "));
    for signal in signals {
        match signal {
            Signal::Reload => {
                println!("reloaded");
                daemon_runtime::signal::reloaded()?;
            }
            Signal::Terminate(_) => {
                std::thread::sleep(Duration::from_secs(1));
                println!("stopping");
                return Ok(());
            }
            _ => {}
        }
    }
    Ok(())
}
