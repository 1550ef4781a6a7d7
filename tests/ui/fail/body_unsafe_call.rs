// The body is outside the `unsafe` block the attribute generates: calling an unsafe function still
// needs the user's own `unsafe`.
use daemon_runtime::daemon;

unsafe fn dangerous() {}

#[daemon]
fn main() {
    dangerous();
}
