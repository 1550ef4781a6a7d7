//! A working directory that does not exist: the launcher must fail, and this body must never run.
use daemon_runtime::daemon;

#[daemon(workdir = "/nonexistent/daemon-runtime-test")]
fn main() {
    tests::report("the body ran\n");
}
