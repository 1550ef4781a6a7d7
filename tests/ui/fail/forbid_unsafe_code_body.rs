// Under `#![forbid(unsafe_code)]`, the user's own `unsafe` in main's body is still refused: only the
// attribute's generated call escapes the lint.
#![forbid(unsafe_code)]

use daemon_runtime::daemon;

#[daemon]
fn main() {
    // SAFETY: getpid has no preconditions.
    let _ = unsafe { libc::getpid() };
}
