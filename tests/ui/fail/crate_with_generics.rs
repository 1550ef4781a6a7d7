// An attribute's path cannot carry generic arguments: refused with the literal's span, not a panic when
// `#[daemon]` moves below the runtime's attribute as `#[<crate>::daemon]`.
use daemon_runtime::daemon;

#[daemon(crate = "daemon_runtime<u8>")]
#[tokio::main]
async fn main() {}
