//! The stop schedule, as start-stop-daemon's `--retry` writes it.

use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::Config;

/// The stop schedule unless told otherwise: SIGTERM, up to 30 s for the exit, then SIGKILL and up to 5 s.
pub(crate) const DEFAULT_STOP_RETRY: &str = "TERM/30/KILL/5";

/// The configured schedule, parsed.
pub(crate) fn of(config: &Config) -> Result<Schedule, String> {
    Schedule::parse(config.stop_retry.as_deref().unwrap_or(DEFAULT_STOP_RETRY))
}

/// For `start`: whether the stop schedule parses.
pub(crate) fn check(config: &Config) -> Result<(), String> {
    of(config).map(drop)
}

/// A stop schedule, as start-stop-daemon's `--retry`: `TERM/30/KILL/5` sends SIGTERM, waits up to 30 s
/// for the process to exit, then sends SIGKILL and waits up to 5 s. Items are signals (`TERM`, `SIGTERM`,
/// `-15`: a number needs the `-`), timeouts in seconds (decimals allowed: `0.5`) and at most one
/// `forever`, after which the rest repeats until the process is gone. A lone timeout `T` means
/// `TERM/T/KILL/T`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(super) items: Vec<Item>,
    pub(super) repeat_from: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Signal(Signal),
    Wait(Duration),
}

impl Schedule {
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let bad = |why: String| Err(format!("invalid stop_retry {text:?}: {why}"));
        if let Some(wait) = seconds(text) {
            return Ok(Schedule {
                items: vec![
                    Item::Signal(Signal::SIGTERM),
                    Item::Wait(wait),
                    Item::Signal(Signal::SIGKILL),
                    Item::Wait(wait),
                ],
                repeat_from: None,
            });
        }
        let mut items = Vec::new();
        let mut repeat_from = None;
        for part in text.split('/') {
            if part == "forever" {
                if repeat_from.is_some() {
                    return bad("`forever` may appear only once".into());
                }
                repeat_from = Some(items.len());
            } else if let Some(wait) = seconds(part) {
                items.push(Item::Wait(wait));
            } else {
                match signal(part) {
                    Some(signal) => items.push(Item::Signal(signal)),
                    None => {
                        return bad(format!(
                            "{part:?} is neither a signal (TERM, SIGKILL, -9), a timeout in seconds nor `forever`"
                        ));
                    }
                }
            }
        }
        if items.len() < 2 {
            return bad("a schedule has at least two items, like TERM/30/KILL/5".into());
        }
        if !items.iter().any(|i| matches!(i, Item::Signal(_))) {
            return bad("it sends no signal".into());
        }
        if let Some(from) = repeat_from {
            let waits = items[from..]
                .iter()
                .any(|i| matches!(i, Item::Wait(d) if !d.is_zero()));
            if !waits {
                return bad("what follows `forever` must include a timeout above 0".into());
            }
        }
        Ok(Schedule { items, repeat_from })
    }

    /// The time the schedule waits in one pass.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(super) fn total_wait(&self) -> Duration {
        self.items
            .iter()
            .map(|i| match i {
                Item::Wait(d) => *d,
                Item::Signal(_) => Duration::ZERO,
            })
            .sum()
    }
}

/// Seconds, as digits with an optional fraction (no sign, exponent or `inf`); at most a year.
fn seconds(text: &str) -> Option<Duration> {
    let valid = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|c| *c == '.').count() <= 1
        && text.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    let secs: f64 = text.parse().ok()?;
    (secs <= 365.0 * 86400.0).then(|| Duration::from_secs_f64(secs))
}

/// A signal by name (`TERM`, `SIGTERM`, any case, optionally with a leading `-`) or by number after a `-`
/// (`-9`; a bare number is a timeout).
fn signal(text: &str) -> Option<Signal> {
    let text = text.strip_prefix('-').unwrap_or(text);
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_like_start_stop_daemons() {
        let s = Schedule::parse("TERM/30/KILL/5").unwrap();
        assert_eq!(
            s.items,
            [
                Item::Signal(Signal::SIGTERM),
                Item::Wait(Duration::from_secs(30)),
                Item::Signal(Signal::SIGKILL),
                Item::Wait(Duration::from_secs(5)),
            ]
        );
        assert_eq!(s.repeat_from, None);
        assert_eq!(
            Schedule::parse("5").unwrap(),
            Schedule::parse("TERM/5/KILL/5").unwrap()
        );
        assert_eq!(
            Schedule::parse("-SIGINT/0.5/-9/1").unwrap().items,
            [
                Item::Signal(Signal::SIGINT),
                Item::Wait(Duration::from_millis(500)),
                Item::Signal(Signal::SIGKILL),
                Item::Wait(Duration::from_secs(1)),
            ]
        );
        let forever = Schedule::parse("TERM/5/forever/KILL/1").unwrap();
        assert_eq!(forever.repeat_from, Some(2));
        for bad in [
            "",
            "TERM",
            "30/5",
            "TERM/x",
            "TERM/5/forever",
            "TERM/forever/5/forever/1",
            "TERM/5/-99",
            "TERM/1e3",
            "TERM/inf",
            "NOSUCH/5",
            "TERM/5/forever/KILL/0",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Schedule::parse("TERM/x").unwrap_err().contains("\"x\""));
    }
}
