//! A crate that forbids unsafe code can use the attribute: the one `unsafe` block it generates (the call
//! of `__private::start`) is the macro's own code, not the user's, which the `unsafe_code` lint does not
//! attribute to the crate.
#![forbid(unsafe_code)]
#![deny(warnings)]

use daemon_runtime::daemon;

#[daemon(umask = 0o027, workdir = "/", ready_timeout = 30)]
fn main() -> Result<(), std::io::Error> {
    Ok(())
}
