use daemon_runtime::daemon;

#[daemon]
fn main(args: Vec<String>) {
    drop(args);
}
