use daemon_runtime::daemon;

#[daemon]
const fn main() {}
