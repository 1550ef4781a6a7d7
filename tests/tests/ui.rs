//! Compile-time tests of `#[daemon]`: `ui/pass` must compile (and run), `ui/fail` must fail with exactly the
//! diagnostics in the `.stderr` file next to each case.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p tests --test ui`, then review them.

/// trybuild runs every pass case after building it. Their `main`s carry `#[daemon]`, so without this they
/// would fork real daemons out of the test run: with `DAEMON_FOREGROUND=1` the runtime stays in the
/// foreground (no fork, stdio kept), runs the trivial body and exits at once. `NOTIFY_SOCKET` is removed so
/// that a test run under systemd never sends `READY=1` on the service's behalf.
fn run_in_foreground() {
    // Edition 2021: these are safe functions. std serialises its own environment accesses (and
    // `Command::spawn`'s) behind a lock, and no test here calls C code that reads the environment.
    std::env::set_var(daemon_runtime::FOREGROUND_ENV, "1");
    std::env::remove_var("NOTIFY_SOCKET");
}

#[test]
fn pass() {
    run_in_foreground();
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
}

#[test]
fn fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
}
