//! The first `main` a daemon author writes: no return type, a body that never returns. It reports its pid
//! and parks for ever (the test kills it).
use daemon_runtime::daemon;

#[daemon]
fn main() {
    tests::report(&format!("{}\n", std::process::id()));
    loop {
        std::thread::park();
    }
}
