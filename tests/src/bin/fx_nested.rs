//! `#[daemon]` on a `main` in a module (or, with `FIXTURE_MODE=inner`, on a `main` declared inside the real
//! one), called by the real main after it opened a file: that file is owned by a live `File`, so the
//! attribute must leave it open (only the root `main`, on its first call, may close every fd).
//! `$FIXTURE_OUT.owned` receives a line through it from the daemon.
use std::io::Write;

mod service {
    use daemon_runtime::daemon;

    #[daemon]
    pub(crate) fn main() {
        tests::report(&format!("{}\n", std::process::id()));
    }
}

fn main() {
    let path = tests::out_path()
        .expect("FIXTURE_OUT")
        .with_extension("owned");
    let mut owned = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("owned file");
    if std::env::var("FIXTURE_MODE").as_deref() == Ok("inner") {
        #[daemon_runtime::daemon]
        fn main() {
            tests::report(&format!("{}\n", std::process::id()));
        }
        main();
    } else {
        service::main();
    }
    // Only the daemon gets here.
    let written = writeln!(owned, "still open in {}", std::process::id());
    written.expect("the File opened before #[daemon] still works");
    tests::linger();
}
