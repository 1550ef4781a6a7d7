//! Attribute arguments -> validated options, driven by the key registry (registry.rs). All validation
//! happens here and in the value parsers (value.rs), so that code generation only ever sees well-formed
//! options.

use proc_macro2::Ident;
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Lit, LitBool, Result, Token};

use crate::key::{Arg, Key, Options, Rule, Value};
use crate::registry::KEYS;
use crate::spelling::closest;
use crate::value::parse_kind;

/// Parses arguments against a registry.
fn parse_with(input: ParseStream, keys: &'static [Key]) -> Result<Options> {
    let mut options = Options::default();
    while !input.is_empty() {
        let ident = parse_key(input)?;
        let name = ident.unraw().to_string();
        let Some(key) = keys.iter().find(|k| k.name == name) else {
            return Err(unknown(&ident, &name, keys));
        };
        let eq = input.parse::<Token![=]>().map_err(|_| {
            Error::new(
                ident.span(),
                format!("expected `{ident} = ...`: every argument of #[daemon] is `key = value`"),
            )
        })?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(Error::new_spanned(
                quote!(#ident #eq),
                format!("missing value after `{name} =`: expected {}", key.expected),
            ));
        }
        let value = parse_kind(key, &key.kind, input)?;
        if options.get(&name).is_some() {
            return Err(Error::new(
                ident.span(),
                format!("duplicate key `{name}`: each key may be given once"),
            ));
        }
        options.args.push(Arg { key, ident, value });
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error(format!(
                "expected `,` after the value of `{name}`, which takes {}",
                key.expected
            )));
        }
        input.parse::<Token![,]>()?;
    }
    for arg in &options.args {
        if matches!(arg.value, Value::Bool(LitBool { value: false, .. })) {
            continue;
        }
        for rule in arg.key.rules {
            match rule {
                Rule::Requires { key, why } => {
                    if options.get(key).is_none() {
                        return Err(Error::new(
                            arg.ident.span(),
                            format!("`{}` needs `{key}` too: {why}", arg.key.name),
                        ));
                    }
                }
                Rule::Check(check) => check(arg, &options)?,
            }
        }
    }
    Ok(options)
}

impl Parse for Options {
    fn parse(input: ParseStream) -> Result<Self> {
        parse_with(input, KEYS)
    }
}

/// Parses the key of one `key = value` argument, with errors for the shapes that are not one.
fn parse_key(input: ParseStream) -> Result<Ident> {
    if input.peek(Lit) {
        let lit: Lit = input.parse()?;
        return Err(Error::new(
            lit.span(),
            "positional arguments are not accepted: write `key = value`, for example `umask = 0o027`",
        ));
    }
    // `Ident::parse_any` also accepts keywords, so that `crate = "..."` parses.
    let key = input.call(Ident::parse_any).map_err(|e| {
        Error::new(
            e.span(),
            "expected `key = value`, for example `umask = 0o027`",
        )
    })?;
    if input.peek(Token![::]) {
        let mut tokens = quote!(#key);
        let mut text = key.to_string();
        while input.peek(Token![::]) {
            let colons: Token![::] = input.parse()?;
            tokens.extend(quote!(#colons));
            text.push_str("::");
            match input.call(Ident::parse_any) {
                Ok(segment) => {
                    text.push_str(&segment.to_string());
                    tokens.extend(quote!(#segment));
                }
                Err(_) => break,
            }
        }
        return Err(Error::new_spanned(
            tokens,
            format!(
                "expected `key = value`, found the path `{text}`: #[daemon] takes `key = value` arguments only"
            ),
        ));
    }
    if !input.peek(Token![=]) && (input.is_empty() || input.peek(Token![,])) {
        return Err(Error::new(
            key.span(),
            format!(
                "expected `key = value`, found a bare `{key}`: #[daemon] takes `key = value` arguments only"
            ),
        ));
    }
    Ok(key)
}

fn unknown(ident: &Ident, name: &str, keys: &[Key]) -> Error {
    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
    let mut message = format!("unknown key `{name}`");
    if let Some(near) = closest(name, &names) {
        message.push_str(&format!(": did you mean `{near}`?"));
    }
    message.push_str(&format!(" The keys are: {}", names.join(", ")));
    Error::new(ident.span(), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use proc_macro2::TokenStream;

    use crate::key::{Kind, any};
    use crate::spelling::edit_distance;

    fn parse(text: &str) -> Result<Options> {
        syn::parse_str::<Options>(text)
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => e.to_string(),
        }
    }

    fn int(options: &Options, key: &str) -> i128 {
        match options.get(key).map(|arg| &arg.value) {
            Some(Value::Int(i)) => i.value,
            _ => panic!("no integer `{key}`"),
        }
    }

    fn text(options: &Options, key: &str) -> String {
        match options.get(key).map(|arg| &arg.value) {
            Some(Value::Text(t)) => t.value.clone(),
            _ => panic!("no text `{key}`"),
        }
    }

    /// The builder chain the options expand to, as text.
    fn calls(options: &Options) -> String {
        let krate = quote!(::daemon_runtime);
        let mut calls = TokenStream::new();
        for arg in &options.args {
            calls.extend(arg.builder_call(&krate));
        }
        calls.to_string()
    }

    #[test]
    fn umask_in_any_base() {
        for text in [
            "umask = 0o027",
            "umask = 23",
            "umask = 0x17",
            "umask = 0b10111",
        ] {
            assert_eq!(int(&parse(text).unwrap(), "umask"), 0o027, "{text}");
        }
        assert!(error("umask = 0o1000").contains("out of range"));
        assert!(error("umask = -1").contains("out of range"));
        assert!(
            error("umask = 99999999999999999999999999999999999999999").contains("out of range")
        );
        assert!(error("umask = \"0o27\"").contains("found a string literal"));
        assert!(error("umask = 18u8").contains("suffix"));
        assert!(error("umask = \"0o27\"").contains("remove the quotes: `umask = 0o27`"));
        assert!(!error("umask = \"abc\"").contains("quotes"));
        assert!(error("umask = 1.5").contains("found a float literal"));
    }

    #[test]
    fn paths_and_names() {
        let options =
            parse(r#"workdir = "/var/lib/app", pid_file = "/run/a.pid", user = "nobody","#)
                .unwrap();
        assert_eq!(text(&options, "workdir"), "/var/lib/app");
        assert_eq!(text(&options, "pid_file"), "/run/a.pid");
        assert_eq!(text(&options, "user"), "nobody");
        assert!(error(r#"workdir = """#).contains("empty path"));
        assert!(error(r#"user = """#).contains("empty name"));
        assert!(error(r#"chroot = "/a\0b""#).contains("NUL"));
        assert!(error("stdout = 3").contains("found an integer literal"));
    }

    #[test]
    fn keys_are_checked() {
        assert!(error("umask = 1, umask = 2").contains("duplicate key `umask`"));
        let e = error("workdri = \"/\"");
        assert!(
            e.contains("did you mean `workdir`") && e.contains("pid_file"),
            "{e}"
        );
        assert!(error("\"/\"").contains("positional"));
        assert!(error("foo::bar").contains("found the path `foo::bar`"));
        assert!(error("umask").contains("bare `umask`"));
        assert!(error("umask =").contains("missing value after `umask =`"));
        assert!(error("keep_fds = , umask = 1").contains("missing value after `keep_fds =`"));
        // An unknown key is reported as such, even without a value.
        assert!(error("umsak =").contains("did you mean `umask`"));
        assert!(error("umask = 1 2").contains("expected `,` after the value of `umask`"));
    }

    #[test]
    fn keep_fds_ready_timeout_crate() {
        let options =
            parse(r#"keep_fds = [3, 10,], readiness = "manual", ready_timeout = 5, crate = "::d""#)
                .unwrap();
        assert_eq!(options.krate().unwrap().segments.len(), 1);
        assert_eq!(
            calls(&options),
            quote!(
                .keep_fds([3, 10])
                .readiness(::daemon_runtime::Readiness::Manual)
                .ready_timeout(::core::time::Duration::from_secs(5))
            )
            .to_string()
        );
        assert!(error("keep_fds = [2]").contains("above 2"));
        assert!(error("keep_fds = [3, 3]").contains("listed twice"));
        assert!(
            error("keep_fds = [3,,4]").contains("an item is missing in the list of `keep_fds`")
        );
        assert!(error("keep_fds = [4294967296]").contains("out of range"));
        assert!(error("keep_fds = 3").contains("found `3`"));
        assert!(error(r#"readiness = "later""#).contains("unknown value `later` for `readiness`"));
        assert!(error(r#"readiness = "manul""#).contains("Did you mean \"manual\""));
        assert!(error("ready_timeout = 0").contains("at least 1"));
        assert!(error(r#"crate = "not a path""#).contains("not a path"));
        assert!(error(r#"crate = "a<b>::c""#).contains("not a path"));
    }

    #[test]
    fn an_empty_env_list_keeps_its_type() {
        let options = parse("env = []").unwrap();
        assert_eq!(
            calls(&options),
            quote!(.env(::daemon_runtime::Env::keep([""; 0]))).to_string()
        );
    }

    #[test]
    fn edit_distance_works() {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(edit_distance("umsak", "umask"), 1);
        assert_eq!(edit_distance("umask", "umask"), 0);
        assert_eq!(edit_distance("", "umask"), 5);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("umsak", &names), Some("umask"));
        assert_eq!(closest("pidfile", &names), Some("pid_file"));
        assert_eq!(closest("zzzzzz", &names), None);
    }

    /// The registry is consistent: unique names, and rules that name real keys.
    #[test]
    fn registry_is_consistent() {
        let mut names = HashSet::new();
        for key in KEYS {
            assert!(names.insert(key.name), "`{}` is listed twice", key.name);
            for rule in key.rules {
                if let Rule::Requires { key: other, .. } = rule {
                    assert!(KEYS.iter().any(|k| k.name == *other), "`{other}`");
                }
            }
        }
    }

    /// The keys table, which lives once, in the attribute's documentation (daemon-runtime/src/daemon.md,
    /// on docs.rs as `daemon_runtime::daemon`), lists exactly the registry's keys, in its order: the
    /// first cell of each row names one key or several (`` `stdout`, `stderr` ``).
    #[test]
    fn the_keys_table_is_the_registry() {
        let docs = include_str!("../../daemon-runtime/src/daemon.md");
        let rows: Vec<&str> = docs
            .lines()
            .skip_while(|line| !line.starts_with("| key |"))
            .skip(2)
            .take_while(|line| line.starts_with("| `"))
            .collect();
        let documented: Vec<&str> = rows
            .iter()
            .flat_map(|row| {
                let cell = row.split('|').nth(1).unwrap_or("");
                cell.split(',').map(|name| name.trim().trim_matches('`'))
            })
            .collect();
        let registry: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        assert_eq!(
            documented, registry,
            "the keys table in daemon-runtime/src/daemon.md must list the registry's keys in its order"
        );
    }

    // A registry of the kinds the keys to come need, to show that each parses, validates and expands.
    fn schedule(text: &str) -> std::result::Result<(), String> {
        if text.split('/').count().is_multiple_of(2) {
            Ok(())
        } else {
            Err(format!("`{text}` is not SIGNAL/SECONDS pairs"))
        }
    }

    fn env(key: &'static Key, input: ParseStream) -> Result<Value> {
        const LIST: Kind = Kind::TextList {
            what: "variable name",
            check: any,
        };
        const CLEAN: Kind = Kind::OneOf {
            ty: "Env",
            choices: &[("clean", "Clean")],
        };
        if input.peek(syn::token::Bracket) {
            parse_kind(key, &LIST, input)
        } else {
            parse_kind(key, &CLEAN, input)
        }
    }

    fn no_nice_as_root(arg: &Arg, options: &Options) -> Result<()> {
        match (&arg.value, options.get("user")) {
            (Value::Int(i), None) if i.value < 0 => {
                Err(Error::new(i.span, "negative without user"))
            }
            _ => Ok(()),
        }
    }

    static FUTURE: &[Key] = &[
        Key::new("pid_file", PATH_KIND, "a path"),
        Key::new("user", PATH_KIND, "a name"),
        Key::new("core_dumps", Kind::Bool, "`true` or `false`"),
        Key::new("commands", Kind::Bool, "`true` or `false`").rules(&[Rule::Requires {
            key: "pid_file",
            why: "the commands find the daemon by its lock",
        }]),
        Key::new("nice", Kind::Int { min: -20, max: 19 }, "-20 to 19")
            .rules(&[Rule::Check(no_nice_as_root)]),
        Key::new(
            "keep_caps",
            Kind::TextList {
                what: "capability",
                check: any,
            },
            "capability names",
        ),
        Key::new(
            "watchdog",
            Kind::OneOf {
                ty: "Watchdog",
                choices: &[("auto", "Auto"), ("manual", "Manual")],
            },
            "\"auto\" or \"manual\"",
        ),
        Key::new("privileged", Kind::FnPath, "a function's path"),
        Key::new(
            "stop_retry",
            Kind::Text {
                what: "schedule",
                check: schedule,
            },
            "a schedule such as \"TERM/30/KILL/5\"",
        ),
        Key::new("env", Kind::Custom(env), "\"clean\" or a list of names"),
    ];
    const PATH_KIND: Kind = Kind::Text {
        what: "path",
        check: any,
    };

    fn future(text: &str) -> Result<Options> {
        syn::parse::Parser::parse_str(|input: ParseStream| parse_with(input, FUTURE), text)
    }

    fn future_error(text: &str) -> String {
        match future(text) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_registry_expresses_the_keys_to_come() {
        let options = future(
            r#"core_dumps = false, nice = -5, user = "app", keep_caps = ["net_bind_service"],
               watchdog = "manual", privileged = crate::setup::bind, stop_retry = "TERM/30/KILL/5",
               env = ["PATH"], commands = true, pid_file = "/run/a.pid""#,
        )
        .unwrap();
        assert_eq!(
            calls(&options),
            quote!(
                .core_dumps(false)
                .nice(-5)
                .user("app")
                .keep_caps(["net_bind_service"])
                .watchdog(::daemon_runtime::Watchdog::Manual)
                .privileged(crate::setup::bind)
                .stop_retry("TERM/30/KILL/5")
                .env(["PATH"])
                .commands(true)
                .pid_file("/run/a.pid")
            )
            .to_string()
        );
        assert!(calls(&future(r#"env = "clean""#).unwrap()).contains("Env :: Clean"));
        assert!(future_error("nice = -21").contains("out of range"));
        assert!(future_error("nice = 20").contains("out of range"));
        assert!(future_error("nice = -1").contains("negative without user"));
        assert!(future_error("commands = true").contains("`commands` needs `pid_file` too"));
        future("commands = false").expect("a rule does not apply to `= false`");
        assert!(future_error("core_dumps = \"true\"").contains("remove the quotes"));
        assert!(future_error("core_dumps = 1").contains("found an integer literal"));
        assert!(future_error(r#"keep_caps = ["a", "a"]"#).contains("listed twice"));
        assert_eq!(
            calls(&future("keep_caps = []").unwrap()),
            quote!(.keep_caps([""; 0])).to_string(),
            "an empty list has a type"
        );
        assert!(future_error(r#"keep_caps = [""]"#).contains("empty capability"));
        assert!(future_error(r#"stop_retry = "TERM/30/KILL""#).contains("not SIGNAL/SECONDS"));
        assert!(future_error(r#"privileged = "setup::bind""#).contains("remove the quotes"));
        assert!(future_error("privileged = 3").contains("found an integer literal"));
        assert!(future_error(r#"env = "dirty""#).contains("unknown value `dirty` for `env`"));
        assert!(future_error(r#"watchdog = "Auto""#).contains("Did you mean \"auto\""));
    }
}
