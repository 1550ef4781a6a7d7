#![deny(warnings)]

// Every key at once. This `main` is never called: running it would chroot, drop privileges and write
// files. The attribute only checks that the function is named `main`, so it compiles inside a module.
mod daemonized {
    use daemon_runtime::daemon;

    #[daemon(
        umask = 0o027,
        workdir = "/",
        pid_file = "/run/app.pid",
        stdout = "/var/log/app.out",
        stderr = "/var/log/app.err",
        user = "nobody",
        group = "65534",
        chroot = "/srv/jail",
        keep_fds = [3, 4],
        readiness = "auto",
        ready_timeout = 30,
        watchdog = "auto",
        privileged = bind,
        keep_caps = ["net_bind_service", "cap_net_raw"],
        ambient_caps = false,
        core_dumps = false,
        no_new_privs = true,
        nofile = [4096, 65536],
        nice = -5,
        env = ["RUST_LOG", "APP_*"],
        commands = true,
        stop_retry = "TERM/10/forever/KILL/5",
        reopen_logs_on = "SIGHUP",
        crate = "::daemon_runtime",
    )]
    pub fn main(listener: std::net::TcpListener) -> std::io::Result<()> {
        drop(listener);
        Ok(())
    }

    fn bind() -> std::io::Result<std::net::TcpListener> {
        std::net::TcpListener::bind("127.0.0.1:80")
    }
}

fn main() {
    let _: fn() -> std::io::Result<()> = daemonized::main;
}
