//! The classic daemon recipe's `__main__`: daemonize with the defaults (umask 0, workdir "/", stdio on /dev/null,
//! every inherited fd closed), then write the daemon's process parameters to a log file.
//!
//! Run it with `cargo run --example log`, then read `/tmp/daemon-runtime-example.log`: the pid differs from
//! the launcher's, the parent is init (or the nearest subreaper), and the process group and session ids are
//! equal to each other but not to the pid, since the second fork left the daemon a non-leader.

use std::io::Write;

use daemon_runtime::daemon;

/// Where the daemon writes; umask 0 leaves the file readable (and writable) by every user.
const LOG: &str = "/tmp/daemon-runtime-example.log";

#[daemon]
fn main() -> std::io::Result<()> {
    let return_code = 0;
    let params = format!(
        "\nreturn code = {return_code}\nprocess ID = {}\nparent process ID = {}\nprocess group ID = {}\n\
         session ID = {}\nuser ID = {}\neffective user ID = {}\nreal group ID = {}\n\
         effective group ID = {}\n\n",
        std::process::id(),
        std::os::unix::process::parent_id(),
        ids::pgrp(),
        ids::sid(),
        ids::uid(),
        ids::euid(),
        ids::gid(),
        ids::egid(),
    );
    std::fs::File::create(LOG)?.write_all(params.as_bytes())
}

/// The ids std does not expose, read from /proc/self/stat and /proc/self/status.
mod ids {
    fn stat_field(index: usize) -> String {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        rest.split_whitespace()
            .nth(index)
            .unwrap_or("?")
            .to_string()
    }

    fn status_ids(key: &str) -> Vec<String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|ids| ids.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    pub(crate) fn pgrp() -> String {
        stat_field(2)
    }
    pub(crate) fn sid() -> String {
        stat_field(3)
    }
    pub(crate) fn uid() -> String {
        status_ids("Uid:").first().cloned().unwrap_or_default()
    }
    pub(crate) fn euid() -> String {
        status_ids("Uid:").get(1).cloned().unwrap_or_default()
    }
    pub(crate) fn gid() -> String {
        status_ids("Gid:").first().cloned().unwrap_or_default()
    }
    pub(crate) fn egid() -> String {
        status_ids("Gid:").get(1).cloned().unwrap_or_default()
    }
}
