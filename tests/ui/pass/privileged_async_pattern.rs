#![deny(warnings)]

// A pattern parameter and a value that is not `Send` (it stays on main's thread), under a
// current-thread runtime.
use std::rc::Rc;

use daemon_runtime::daemon;

struct Setup {
    name: Rc<str>,
    answer: u32,
}

fn setup() -> Result<Setup, String> {
    Ok(Setup {
        name: Rc::from("app"),
        answer: 42,
    })
}

#[daemon(privileged = setup)]
#[tokio::main(flavor = "current_thread")]
async fn main(Setup { name, answer }: Setup) {
    tokio::task::yield_now().await;
    assert_eq!((&*name, answer), ("app", 42));
}
