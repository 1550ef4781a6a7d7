#![deny(warnings)]

// The first `main` a daemon author writes: one that never returns. Its body has the type `!`, and
// behaves as without the attribute. (tests/ui.rs runs pass cases, so it leaves after one round.)
use daemon_runtime::daemon;

#[daemon]
fn main() {
    let mut rounds = 0;
    loop {
        rounds += 1;
        if rounds > 1 {
            std::process::exit(0);
        }
        std::thread::park_timeout(std::time::Duration::from_millis(1));
    }
}
