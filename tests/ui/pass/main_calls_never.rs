#![deny(warnings)]

// A body that hands over to a function that never returns, with keys.
use daemon_runtime::daemon;

fn serve() -> ! {
    std::process::exit(0)
}

#[daemon(umask = 0o027, workdir = "/", readiness = "manual", ready_timeout = 5)]
fn main() {
    serve()
}
