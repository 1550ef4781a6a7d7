//! The key registry: every key `#[daemon(...)]` accepts, each in one entry of [`KEYS`]. The parser, the
//! error messages (the list of keys, did-you-mean) and the builder calls the attribute expands to all come
//! from this table; nothing else in the macro names a key (but `crate`, which steers the expansion itself).
//!
//! # Adding a key
//!
//! 1. Add one [`Key`] to [`KEYS`] below: its name, the kind of value it takes, the text that error messages
//!    give as what is expected (with an example), and, when the default does not fit, how it expands
//!    ([`Emit`]) and the rules it must satisfy with other keys ([`Rule`](crate::args::Rule): `Requires` another key, or any
//!    `Check` function of the options).
//! 2. Give `daemon_runtime::Daemon` a builder method of the same name, taking what the key expands to.
//! 3. Add the key to the keys tables (README and the `daemon` rustdoc in daemon-runtime/src/lib.rs; a unit
//!    test checks the rustdoc one), and a trybuild case in tests/ui where a user can get it wrong.
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
//! `env = "clean"` or `env = ["PATH", "LANG"]`, which returns one of the [`Value`](crate::args::Value)s above).

// Keys with rules also need `crate::args::Rule`.
use crate::args::{any, Emit, Key, Kind};
use quote::quote;

/// The largest `u64`, as the registry's integer type.
const U64_MAX: i128 = u64::MAX as i128;
/// The largest fd number.
const FD_MAX: i128 = i32::MAX as i128;

/// A path: a non-empty string literal without NUL bytes.
const PATH: Kind = Kind::Text {
    what: "path",
    check: any,
};
const PATH_EXPECTED: &str = "a string literal path (for example \"/var/lib/app\")";

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
    Key::new("stdout", PATH, PATH_EXPECTED),
    Key::new("stderr", PATH, PATH_EXPECTED),
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
        "ready",
        Kind::OneOf {
            ty: "Ready",
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
        "crate",
        Kind::CratePath,
        "a string literal path to the runtime crate (for example \"::daemon_runtime\")",
    )
    .emit(Emit::Nothing),
];
