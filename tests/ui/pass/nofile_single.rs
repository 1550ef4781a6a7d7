#![deny(warnings)]

// `nofile = N` sets soft and hard to N; N below the current hard limit needs no privilege.
use daemon_runtime::daemon;

#[daemon(nofile = 256, env = "inherit", core_dumps = true, no_new_privs = false)]
fn main() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files"));
    if let Some(line) = line {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[3..5], ["256", "256"], "{line}");
    }
}
