use daemon_runtime::daemon;

// Meant as "send stderr to the journal": a near miss of a sink's name is refused with a suggestion, not
// taken as a relative path (which would create ./jurnal wherever the launcher was started).
#[daemon(stderr = "jurnal")]
fn main() {}
