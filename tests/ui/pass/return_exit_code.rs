#![deny(warnings)]

use daemon_runtime::daemon;
use std::process::ExitCode;

#[daemon]
fn main() -> ExitCode {
    ExitCode::SUCCESS
}
