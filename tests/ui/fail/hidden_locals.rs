use daemon_runtime::daemon;

#[daemon]
fn main() {
    // The attribute's own locals are invisible to the body.
    let _ = &__daemon_running;
}
