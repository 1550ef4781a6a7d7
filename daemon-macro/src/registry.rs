//! The key registry: every key `#[daemon(...)]` accepts, each in one entry of [`KEYS`]. The parser, the
//! error messages (the list of keys, did-you-mean) and the builder calls the attribute expands to all come
//! from this table; nothing else in the macro names a key (but `crate`, which steers the expansion itself).
//!
//! # Adding a key
//!
//! 1. Add one [`Key`] to [`KEYS`] below: its name, the kind of value it takes, the text that error messages
//!    give as what is expected (with an example), and, when the default does not fit, how it expands
//!    ([`Emit`]) and the rules it must satisfy with other keys ([`Rule`](crate::key::Rule): `Requires` another key, or any
//!    `Check` function of the options).
//! 2. Give `daemon_runtime::Daemon` a builder method of the same name, taking what the key expands to.
//!    A key of an optional part of the runtime (`commands`: the `control` feature) says so with
//!    `.feature("control")`: without the feature, the attribute then fails to compile with a message that
//!    names it, on the key, instead of "no method named `commands`".
//! 3. Add its row to the keys table, which lives once: daemon-runtime/src/daemon.md, the `daemon`
//!    attribute's documentation (a unit test checks that the table lists exactly this registry's keys, in
//!    order); and a trybuild case in tests/ui where a user can get it wrong.
//!
//! ```text
//! // `#[daemon(nice = -5)]` expands to `Daemon::new().nice(-5)`.
//! Key::new("nice", Kind::Int { min: -20, max: 19 }, "an integer literal from -20 to 19 (for example `-5`)"),
//! // `#[daemon(watchdog = "manual")]` expands to `.watchdog(::daemon_runtime::Watchdog::Manual)`.
//! Key::new(
//!     "watchdog",
//!     Kind::OneOf { ty: "Watchdog", choices: &[("auto", "Auto"), ("manual", "Manual")] },
//!     "\"auto\" (the runtime pings) or \"manual\" (the body calls `watchdog()`)",
//! ),
//! // `#[daemon(commands = true)]` is refused without `pid_file` (a rule is checked when the key is given
//! // and its value is not `false`).
//! Key::new("commands", Kind::Bool, "`true` or `false`")
//!     .rules(&[Rule::Requires { key: "pid_file", why: "the commands find the daemon by its pid file's lock" }]),
//! // `#[daemon(privileged = setup::bind)]` expands to `.privileged(setup::bind)`.
//! Key::new("privileged", Kind::FnPath, "the path of a function (for example `setup::bind_port`)"),
//! // `#[daemon(stop_retry = "TERM/30/KILL/5")]`: a string checked by a function of the key's own.
//! Key::new("stop_retry", Kind::Text { what: "schedule", check: check_schedule }, "a schedule (for example \"TERM/30/KILL/5\")"),
//! // A value the builder takes in another form: `ready_timeout = 30` -> `.ready_timeout(Duration::from_secs(30))`.
//! Key::new("ready_timeout", Kind::Int { min: 1, max: U64_MAX }, "...")
//!     .emit(Emit::Wrapped(|secs, _krate| quote!(::core::time::Duration::from_secs(#secs)))),
//! ```
//!
//! The kinds ([`Kind`]): `Bool`; `Int` (signed or unsigned, any base, within `min..=max`); `IntList`;
//! `Text` (a non-empty string literal without NUL, with an optional check); `TextList`; `OneOf` (one of a
//! few strings, expanding to an enum variant of the runtime); `FnPath` (a Rust path, not quoted);
//! `CratePath`; `Custom` (a parser of the key's own, for a value of several shapes such as
//! `env = "clean"` or `env = ["PATH", "LANG"]`, which returns one of the [`Value`](crate::key::Value)s above).

use crate::key::{Emit, Key, Kind, Rule, Value, any};
use crate::value::parse_kind;
use quote::quote;
use syn::parse::ParseStream;
use syn::{Error, Result};

/// The largest `u64`, as the registry's integer type.
const U64_MAX: i128 = u64::MAX as i128;
/// The largest fd number.
const FD_MAX: i128 = i32::MAX as i128;

/// A path: a non-empty string literal without NUL bytes, absolute.
const PATH: Kind = Kind::Text {
    what: "path",
    check: absolute,
};
const PATH_EXPECTED: &str = "a string literal absolute path (for example \"/var/lib/app\")";

/// A path must be absolute: the daemon changes directory (to `workdir`, after any `chroot`), so a
/// relative path would name one file at start and another later (a reload, a reopen), from whatever
/// directory the launcher was started in. systemd refuses a relative `PIDFile=` for the same reason.
fn absolute(path: &str) -> std::result::Result<(), String> {
    if path.starts_with('/') {
        return Ok(());
    }
    Err(format!(
        "`{path}` is a relative path, which would be taken from the directory the launcher was started \
         in, not the daemon's"
    ))
}

/// Where stdout or stderr goes: an absolute path, or a sink the runtime connects to.
const OUTPUT: Kind = Kind::Text {
    what: "path",
    check: path_or_sink,
};
const OUTPUT_EXPECTED: &str = "a string literal absolute path (for example \"/var/log/app.log\"), \"journal\", \
     \"syslog\" or \"syslog:FACILITY\" (for example \"syslog:local0\")";

/// The facilities of syslog(3), as `"syslog:NAME"` names them (the runtime's `Facility` has a variant of
/// each, the name capitalized).
const FACILITIES: [&str; 20] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// An absolute path, `journal`, `syslog` or `syslog:FACILITY`; a near miss of a sink's name gets a
/// did-you-mean (`jurnal`), so that it is not read as the relative path it would otherwise be.
fn path_or_sink(value: &str) -> std::result::Result<(), String> {
    if value.starts_with('/') || value == "journal" || value == "syslog" {
        return Ok(());
    }
    if let Some(facility) = value.strip_prefix("syslog:") {
        if FACILITIES.contains(&facility) {
            return Ok(());
        }
        let hint = crate::spelling::closest(facility, &FACILITIES)
            .map_or_else(String::new, |near| {
                format!(" (did you mean `syslog:{near}`?)")
            });
        return Err(format!(
            "`{facility}` is not a syslog facility{hint}; the facilities are: {}",
            FACILITIES.join(", ")
        ));
    }
    if let Some(near) = crate::spelling::closest(value, &["journal", "syslog"]) {
        return Err(format!("`{value}` is not a sink (did you mean `{near}`?)"));
    }
    absolute(value)
}

/// `"journal"` -> `Output::Journal`, `"syslog:local0"` -> `Output::Syslog(Facility::Local0)`, a path
/// stays the literal (the builder takes it as a path).
fn output(
    value: proc_macro2::TokenStream,
    krate: &proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let Ok(literal) = syn::parse2::<syn::LitStr>(value.clone()) else {
        return value;
    };
    let span = literal.span();
    let facility = |name: &str| {
        let mut variant = name.to_string();
        variant[..1].make_ascii_uppercase();
        let variant = proc_macro2::Ident::new(&variant, span);
        quote::quote_spanned!(span=> #krate::logs::Output::Syslog(#krate::logs::Facility::#variant))
    };
    match literal.value().as_str() {
        "journal" => quote::quote_spanned!(span=> #krate::logs::Output::Journal),
        "syslog" => facility("daemon"),
        sink if sink.starts_with("syslog:") => facility(&sink["syslog:".len()..]),
        _ => value,
    }
}

/// A user or group: a name or a numeric id.
const NAME: Kind = Kind::Text {
    what: "name",
    check: any,
};

/// Every key the attribute accepts, in the order the documentation lists them (and the errors list them).
pub(crate) const KEYS: &[Key] = &[
    Key::new(
        "umask",
        Kind::Int { min: 0, max: 0o777 },
        "an integer literal between 0 and 0o777 (for example `0o027`)",
    ),
    Key::new("workdir", PATH, PATH_EXPECTED),
    Key::new("pid_file", PATH, PATH_EXPECTED),
    Key::new("stdout", OUTPUT, OUTPUT_EXPECTED).emit(Emit::Wrapped(output)),
    Key::new("stderr", OUTPUT, OUTPUT_EXPECTED).emit(Emit::Wrapped(output)),
    Key::new(
        "user",
        NAME,
        "a string literal: a user name or a numeric id (for example \"nobody\" or \"65534\")",
    ),
    Key::new(
        "group",
        NAME,
        "a string literal: a group name or a numeric id (for example \"nogroup\" or \"65534\")",
    ),
    Key::new("chroot", PATH, PATH_EXPECTED),
    Key::new(
        "keep_fds",
        Kind::IntList { min: 3, max: FD_MAX },
        "a list of fd numbers above 2 (for example `[3, 4]`); 0, 1 and 2 always point at /dev/null or \
         the configured files",
    ),
    Key::new(
        "readiness",
        Kind::OneOf {
            ty: "Readiness",
            choices: &[("auto", "Auto"), ("manual", "Manual")],
        },
        "\"auto\" (ready once setup is done) or \"manual\" (the body calls `ready()`)",
    ),
    Key::new(
        "ready_timeout",
        Kind::Int {
            min: 1,
            max: U64_MAX,
        },
        "a number of seconds, an integer literal of at least 1 (for example `30`)",
    )
    .emit(Emit::Wrapped(|secs, _| {
        quote!(::core::time::Duration::from_secs(#secs))
    })),
    Key::new(
        "watchdog",
        Kind::OneOf {
            ty: "Watchdog",
            choices: &[("auto", "Auto"), ("manual", "Manual")],
        },
        "\"auto\" (a runtime thread pings systemd's watchdog) or \"manual\" (the body calls \
         `notify::ping_watchdog()`)",
    ),
    Key::new(
        "privileged",
        Kind::FnPath,
        "the path of a function run as root before the drop, `fn() -> Result<T, E>` (for example \
         `setup::bind_port`); `main` takes its `T` as its one parameter",
    )
    .emit(Emit::Nothing),
    Key::new(
        "keep_caps",
        Kind::TextList {
            what: "capability",
            check: capability,
        },
        "a list of capability names as in capabilities(7) (for example `[\"net_bind_service\"]`)",
    )
    .rules(&[Rule::Requires {
        key: "user",
        why: "capabilities are kept across the switch to that user",
    }]),
    Key::new(
        "ambient_caps",
        Kind::Bool,
        "`true` (programs the daemon executes keep the capabilities too) or `false`",
    )
    .rules(&[Rule::Requires {
        key: "keep_caps",
        why: "it makes the kept capabilities ambient",
    }]),
    Key::new(
        "core_dumps",
        Kind::Bool,
        "`false` (no core dumps, not dumpable) or `true` (the inherited limit stays)",
    ),
    Key::new(
        "no_new_privs",
        Kind::Bool,
        "`true` (no program the daemon executes can gain privileges) or `false`",
    ),
    Key::new(
        "nofile",
        Kind::Custom(nofile),
        "a limit on open files, an integer literal (soft and hard, for example `65536`) or `[SOFT, HARD]` \
         (for example `[4096, 65536]`)",
    )
    .emit(Emit::Wrapped(|limits, _| {
        // `[SOFT, HARD]` -> `SOFT, HARD`: the builder takes two arguments.
        match limits.clone().into_iter().next() {
            Some(proc_macro2::TokenTree::Group(list))
                if list.delimiter() == proc_macro2::Delimiter::Bracket =>
            {
                list.stream()
            }
            _ => limits,
        }
    })),
    Key::new(
        "nice",
        Kind::Int { min: -20, max: 19 },
        "an integer literal from -20 to 19 (for example `10`)",
    ),
    Key::new(
        "env",
        Kind::Custom(env),
        "\"clean\" (keep only NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*, PATH, LANG, TZ), \"inherit\", or a list \
         of more names to keep (for example `[\"RUST_LOG\", \"HOME\"]`)",
    )
    .emit(Emit::Wrapped(|value, krate| {
        // A list (`[..]`, or `[""; 0]` when empty) names variables to keep; a choice is an `Env` already.
        let list = matches!(
            value.clone().into_iter().next(),
            Some(proc_macro2::TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Bracket
        );
        if list {
            quote!(#krate::Env::keep(#value))
        } else {
            value
        }
    })),
    Key::new("commands", Kind::Bool, "`true` or `false`")
        .rules(&[Rule::Requires {
            key: "pid_file",
            why: "the commands find the running daemon by its pid file's lock",
        }])
        .feature("control"),
    Key::new(
        "stop_retry",
        Kind::Text {
            what: "schedule",
            check: check_schedule,
        },
        "a stop schedule as start-stop-daemon's --retry: signals, seconds to wait and `forever`, separated \
         by `/` (for example \"TERM/30/KILL/5\")",
    )
    .feature("control"),
    Key::new(
        "reopen_logs_on",
        Kind::OneOf {
            ty: "Signal",
            choices: &[
                ("SIGUSR1", "User1"),
                ("SIGUSR2", "User2"),
                ("SIGHUP", "Reload"),
            ],
        },
        "the signal on which the log files are reopened: \"SIGUSR1\", \"SIGUSR2\" or \"SIGHUP\"",
    ),
    Key::new(
        "crate",
        Kind::CratePath,
        "a string literal path to the runtime crate (for example \"::daemon_runtime\")",
    )
    .emit(Emit::Nothing),
];

/// The capability names of capabilities(7), lower case without `cap_`, by number (as the runtime's table).
const CAPABILITIES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A capability name: `net_bind_service` or `cap_net_bind_service`, any case.
fn capability(name: &str) -> std::result::Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    if CAPABILITIES.contains(&bare) {
        return Ok(());
    }
    let near: Vec<&str> = CAPABILITIES
        .iter()
        .copied()
        .filter(|c| c.contains(bare) || bare.contains(c))
        .collect();
    let hint = if near.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", near.join(" or "))
    };
    Err(format!(
        "`{name}` is not a capability{hint}; the names are: {}",
        CAPABILITIES.join(", ")
    ))
}

/// The largest open-file limit Linux accepts (`fs.nr_open` cannot exceed it).
const NOFILE_MAX: i128 = 1 << 30;

/// `nofile = N` (soft and hard) or `nofile = [SOFT, HARD]`, SOFT at most HARD; both become `[SOFT, HARD]`.
fn nofile(key: &'static Key, input: ParseStream) -> Result<Value> {
    let kind = Kind::Int {
        min: 1,
        max: NOFILE_MAX,
    };
    if !input.peek(syn::token::Bracket) {
        let Value::Int(limit) = parse_kind(key, &kind, input)? else {
            unreachable!("an Int kind parses to an Int")
        };
        return Ok(Value::IntList(vec![limit, limit], limit.span));
    }
    let list = Kind::IntList {
        min: 1,
        max: NOFILE_MAX,
    };
    let value = parse_kind(key, &list, input);
    match value {
        Ok(Value::IntList(items, span)) => match items.as_slice() {
            [soft, hard] if soft.value <= hard.value => Ok(Value::IntList(items, span)),
            [soft, hard] => Err(Error::new(
                soft.span,
                format!(
                    "the soft limit {} is above the hard limit {}: `nofile = [SOFT, HARD]` with SOFT \
                     at most HARD",
                    soft.value, hard.value
                ),
            )),
            _ => Err(Error::new(
                span,
                format!(
                    "`nofile` takes one limit or two, `[SOFT, HARD]`, found {} values",
                    items.len()
                ),
            )),
        },
        other => other,
    }
}

/// A variable name to keep: no `=`; a trailing `*` keeps every name with that prefix.
fn variable(name: &str) -> std::result::Result<(), String> {
    let bare = name.strip_suffix('*').unwrap_or(name);
    if bare.is_empty() || bare.contains(['=', '*']) || bare.contains(char::is_whitespace) {
        return Err(format!(
            "`{name}` is not a variable name (a name, or a prefix ending in `*` such as `RUST_*`)"
        ));
    }
    Ok(())
}

/// `env = "clean"`, `env = "inherit"`, or `env = ["NAME", ...]`.
fn env(key: &'static Key, input: ParseStream) -> Result<Value> {
    if input.peek(syn::token::Bracket) {
        return parse_kind(
            key,
            &Kind::TextList {
                what: "variable name",
                check: variable,
            },
            input,
        );
    }
    parse_kind(
        key,
        &Kind::OneOf {
            ty: "Env",
            choices: &[("clean", "Clean"), ("inherit", "Inherit")],
        },
        input,
    )
}

/// Signal names a stop schedule may use (without `SIG`), as Linux names them.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
];

/// `stop_retry`: the grammar the runtime's schedule parser accepts (it checks again at run time): a lone
/// timeout, or at least two `/`-separated items, each a signal (`TERM`, `SIGTERM`, `-15`), a timeout in
/// seconds (`30`, `0.5`) or `forever` (once, with a timeout above 0 after it); at least one signal.
fn check_schedule(text: &str) -> std::result::Result<(), String> {
    let seconds = |item: &str| {
        let digits = item.chars().filter(char::is_ascii_digit).count();
        let dots = item.chars().filter(|c| *c == '.').count();
        (digits > 0 && digits + dots == item.len() && dots <= 1)
            .then(|| item.parse::<f64>().ok())?
    };
    let signal = |item: &str| {
        let item = item.strip_prefix('-').unwrap_or(item);
        if let Ok(number) = item.parse::<u8>() {
            return (1..=31).contains(&number);
        }
        let upper = item.to_ascii_uppercase();
        SIGNALS.contains(&upper.strip_prefix("SIG").unwrap_or(&upper))
    };
    let text = text.trim();
    if seconds(text).is_some() {
        return Ok(());
    }
    let items: Vec<&str> = text.split('/').collect();
    if items.len() < 2 {
        return Err(format!("`{text}` has fewer than two items"));
    }
    let mut forever = None;
    let mut signals = 0;
    for (index, item) in items.iter().enumerate() {
        if *item == "forever" {
            if forever.replace(index).is_some() {
                return Err("`forever` may appear only once".into());
            }
        } else if seconds(item).is_some() {
        } else if signal(item) {
            signals += 1;
        } else {
            return Err(format!(
                "`{item}` is neither a signal (TERM, SIGKILL, -9), a number of seconds nor `forever`"
            ));
        }
    }
    if signals == 0 {
        return Err("it sends no signal".into());
    }
    if let Some(index) = forever
        && !items[index + 1..]
            .iter()
            .any(|i| seconds(i).is_some_and(|s| s > 0.0))
    {
        return Err("what follows `forever` must include a timeout above 0".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_schedule;

    #[test]
    fn schedules_are_checked_as_the_runtime_parses_them() {
        for good in [
            "TERM/30/KILL/5",
            "5",
            "-SIGINT/0.5/-9/1",
            "TERM/5/forever/KILL/1",
            "hup/1",
        ] {
            assert_eq!(check_schedule(good), Ok(()), "{good}");
        }
        for bad in [
            "TERM",
            "30/5",
            "TERM/x",
            "TERM/5/forever",
            "TERM/1e3",
            "NOSUCH/5",
            "TERM/5/-99",
        ] {
            assert!(check_schedule(bad).is_err(), "{bad}");
        }
    }
}
