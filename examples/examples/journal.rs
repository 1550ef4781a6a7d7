//! Logs where operators look: stdout and stderr on the journal (`"journal"`), connected before the
//! daemon forks away, with the `log` facade's levels as sd-daemon(3) prefixes, so that
//! `journalctl -t journal -p err` shows only the errors.
//!
//! Run it with `cargo run --example journal` on a machine with systemd-journald, then
//! `journalctl -t journal` (every line, with priorities in colour) and `journalctl -t journal -p warning`
//! (the warning and the error only). Change both keys to `"syslog"` (or `"syslog:local0"`) to send the
//! same lines to the syslog daemon at `/dev/log` instead: `grep journal /var/log/syslog`.

use std::io::Write;

use daemon_runtime::daemon;

#[daemon(stdout = "journal", stderr = "journal")]
fn main() {
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Debug)
        // `<3>message`: the journal (and the syslog relay) take the line's priority from the prefix and
        // drop it, so no timestamp or level text is needed: the journal records both.
        .format(|out, record| writeln!(out, "<{}>{}", priority(record.level()), record.args()))
        .init();
    log::debug!("configuration read");
    log::info!("serving on 127.0.0.1:7007");
    log::warn!("cache directory missing, running without one");
    log::error!("cannot reach the upstream server");
    // Lines without a prefix keep their stream's level: info for stdout, err for stderr.
    println!("a line on stdout");
}

/// The syslog(3) priority of a `log` level, as sd-daemon(3) prefixes write it.
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}
