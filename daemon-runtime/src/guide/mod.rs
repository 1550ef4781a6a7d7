//! The guide: what the runtime does at each moment of a daemon's life, and why. The API reference is
//! on the items themselves; the attribute's keys are listed on [`daemon`](crate::daemon).
//!
//! | chapter | for the question |
//! |---|---|
//! | [How it works](how_it_works) | what happens between `myapp` and `main`'s body, step by step |
//! | [Stopping and reloading](signals) | SIGTERM, SIGHUP and friends as events; reload acknowledgement; PID 1 |
//! | [Foreground, systemd and containers](systemd) | when it does not fork, which `Type=`, the notify protocol, the watchdog, socket activation, the unit from the keys (`myapp unit`, `install`) and launchd |
//! | [Controlling a running daemon](control) | `myapp status \| stop \| restart \| reload \| reopen-logs`, exit codes, why the lock decides |
//! | [Upgrading in place](upgrade) | `myapp upgrade`: a new binary takes the sockets and the lock with no connection refused; rollback |
//! | [Privileges](privileges) | binding port 80 as root and serving as a user; capabilities; the hardening keys |
//! | [Log files and rotation](logs) | where output goes; logrotate in `create` and `copytruncate` modes |
//! | [The journal and syslog](journal_syslog) | `stderr = "journal"`, `"syslog:local0"`; levels; chroot, forks, a syslog restart |
//! | [Troubleshooting and refusals](troubleshooting) | where did my output go, why the launcher exited 1, every refusal explained |
//! | [What it costs, and how it compares](performance) | start-up time at any fd limit, build cost, the other crates, platforms |
//!
//! Every Rust example here is compiled by `cargo test` (as the README's are).

// Prose, where names of tools and terms are words, not code.
#![allow(clippy::doc_markdown)]

#[doc = include_str!("how_it_works.md")]
pub mod how_it_works {}

#[doc = include_str!("signals.md")]
pub mod signals {}

#[doc = include_str!("systemd.md")]
pub mod systemd {}

#[doc = include_str!("control.md")]
pub mod control {}

// The chapter's example needs the `control` feature; without it, the chapter says where to read it.
#[cfg_attr(feature = "control", doc = include_str!("upgrade.md"))]
#[cfg_attr(
    not(feature = "control"),
    doc = "# Upgrading in place\n\n`myapp upgrade` belongs to the `control` feature, which this build of the \
           documentation does not have: read this chapter [on docs.rs]\
           (https://docs.rs/daemon-runtime/latest/daemon_runtime/guide/upgrade/index.html)."
)]
pub mod upgrade {}

#[doc = include_str!("privileges.md")]
pub mod privileges {}

#[doc = include_str!("logs.md")]
pub mod logs {}

#[doc = include_str!("journal_syslog.md")]
pub mod journal_syslog {}

#[doc = include_str!("troubleshooting.md")]
pub mod troubleshooting {}

#[doc = include_str!("performance.md")]
pub mod performance {}

/// The README's Rust code, compiled by `cargo test` as doctests (never run: they daemonize).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
