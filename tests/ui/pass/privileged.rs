#![deny(warnings)]

// `privileged = f` runs f before the drop and hands its value to main's one parameter; the hardening
// keys that need no root. (Run in the foreground by tests/ui.rs.)
use daemon_runtime::daemon;

struct Setup {
    answer: u32,
    name: String,
}

fn setup() -> Result<Setup, String> {
    Ok(Setup {
        answer: 42,
        name: "app".into(),
    })
}

#[daemon(
    privileged = setup,
    core_dumps = false,
    no_new_privs = true,
    nice = 5,
    env = "clean"
)]
fn main(Setup { answer, name }: Setup) {
    assert_eq!((answer, name.as_str()), (42, "app"));
    assert!(std::env::var_os("HOME").is_none(), "env = \"clean\" removed HOME");
}
