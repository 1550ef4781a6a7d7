// A syntax error in main's body is rustc's alone: the attribute does not parse the body, so it adds no
// error of its own ("#[daemon] goes on `fn main`").
use daemon_runtime::daemon;

#[daemon]
fn main() {
    let x = ;
}
