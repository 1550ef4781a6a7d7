use daemon_runtime::daemon;

#[daemon(user = "nobody", keep_caps = ["net_bind"])]
fn main() {}
