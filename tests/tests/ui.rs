//! Compile-time tests of `#[daemon]`: `ui/pass` must compile (and run), `ui/fail` must fail with exactly the
//! diagnostics in the `.stderr` file next to each case.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p tests --test ui`, then review them.

/// trybuild runs every pass case after building it. Their `main`s carry `#[daemon]`, so without this they
/// would fork real daemons out of the test run: with `DAEMON_FOREGROUND=1` the runtime stays in the
/// foreground (no fork, stdio kept), runs the trivial body and exits at once. `NOTIFY_SOCKET` is removed so
/// that a test run under systemd never sends `READY=1` on the service's behalf.
fn run_in_foreground() {
    // SAFETY: the only other thread that may run is the `fail` test's, which reads the environment only
    // through std (`Command::spawn`), under the same lock as `set_var` and `remove_var`; no thread of
    // this process calls C code that reads it.
    unsafe { std::env::set_var(daemon_runtime::FOREGROUND_ENV, "1") };
    // SAFETY: as above.
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
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
