// The value of `privileged` is evaluated outside the attribute's `unsafe` block: reading a `static mut`
// there still needs the user's own `unsafe`.
use daemon_runtime::daemon;

fn setup() -> Result<u32, String> {
    Ok(1)
}

static mut HOOK: fn() -> Result<u32, String> = setup;

#[daemon(privileged = HOOK)]
fn main(_value: u32) {}
