#![deny(warnings)]

// The parameter that takes `privileged`'s value keeps its attributes (a doc comment goes: it would
// document nothing on the binding), and a pattern whose path starts with `self::` is a pattern, not a
// receiver. (Run in the foreground by tests/ui.rs.)
use daemon_runtime::daemon;

mod port {
    pub struct Port(pub u16);
}

fn bind() -> Result<port::Port, String> {
    Ok(port::Port(7007))
}

#[daemon(privileged = bind)]
fn main(
    /// The port bound as root.
    #[allow(unused_variables)]
    self::port::Port(number): self::port::Port,
) {
}
