use daemon_runtime::daemon;

#[daemon(privileged = "setup::bind")]
fn main(value: u32) {
    drop(value);
}
