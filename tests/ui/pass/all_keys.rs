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
        ready = "auto",
        ready_timeout = 30,
        crate = "::daemon_runtime",
    )]
    pub fn main() -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let _: fn() -> std::io::Result<()> = daemonized::main;
}
