//! `#[daemon]` with a umask and a working directory.
use daemon_runtime::daemon;

#[daemon(umask = 0o027, workdir = "/tmp")]
fn main() -> std::io::Result<()> {
    tests::report_pid_and_wait();
    Ok(())
}
