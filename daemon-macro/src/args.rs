//! Attribute arguments -> typed options. Every value keeps its span, and all validation happens here, so
//! that code generation only ever sees well-formed options.

use proc_macro2::Span;
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Ident, Lit, LitInt, LitStr, Result, Token};

/// Every key the attribute accepts, in the order the documentation lists them.
pub const KEYS: &[&str] = &[
    "umask",
    "workdir",
    "pid_file",
    "stdout",
    "stderr",
    "user",
    "group",
    "chroot",
    "keep_fds",
    "ready",
    "ready_timeout",
    "crate",
];

/// The largest value `umask` accepts.
const UMASK_MAX: u32 = 0o777;

// What each key expects, for error messages.
const UMASK_EXPECTED: &str = "an integer literal between 0 and 0o777 (for example `0o027`)";
const PATH_EXPECTED: &str = "a string literal path (for example \"/var/lib/app\")";
const FDS_EXPECTED: &str = "a list of fd numbers above 2 (for example `[3, 4]`)";
const READY_EXPECTED: &str =
    "\"auto\" (ready once setup is done) or \"manual\" (the body calls `ready()`)";
const TIMEOUT_EXPECTED: &str =
    "a number of seconds, an integer literal of at least 1 (for example `30`)";
const CRATE_EXPECTED: &str =
    "a string literal path to the runtime crate (for example \"::daemon_runtime\")";

/// What the value of `key` must be, or `None` for an unknown key.
fn expected(key: &str) -> Option<String> {
    Some(match key {
        "umask" => UMASK_EXPECTED.to_string(),
        "workdir" | "pid_file" | "stdout" | "stderr" | "chroot" => PATH_EXPECTED.to_string(),
        "user" | "group" => name_expected(key),
        "keep_fds" => FDS_EXPECTED.to_string(),
        "ready" => READY_EXPECTED.to_string(),
        "ready_timeout" => TIMEOUT_EXPECTED.to_string(),
        "crate" => CRATE_EXPECTED.to_string(),
        _ => return None,
    })
}

fn name_expected(key: &str) -> String {
    let example = if key == "group" { "nogroup" } else { "nobody" };
    format!(
        "a string literal: a {key} name or a numeric id (for example \"{example}\" or \"65534\")"
    )
}

/// A validated value together with the span of the token it came from.
#[derive(Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// When the launcher may exit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// As soon as setup is done (the default).
    Auto,
    /// When the body calls `daemon_runtime::ready()`.
    Manual,
}

/// The typed, validated options of one `#[daemon(...)]`.
#[derive(Default)]
pub struct Options {
    pub umask: Option<Spanned<u32>>,
    pub workdir: Option<Spanned<String>>,
    pub pid_file: Option<Spanned<String>>,
    pub stdout: Option<Spanned<String>>,
    pub stderr: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub chroot: Option<Spanned<String>>,
    pub keep_fds: Option<Spanned<Vec<i32>>>,
    pub ready: Option<Spanned<Ready>>,
    pub ready_timeout: Option<Spanned<u64>>,
    pub krate: Option<syn::Path>,
}

impl Parse for Options {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let key = parse_key(input)?;
            let name = key.unraw().to_string();
            let Some(expected) = expected(&name) else {
                return Err(unknown(&key, &name));
            };
            let eq = input.parse::<Token![=]>().map_err(|_| {
                Error::new(
                    key.span(),
                    format!("expected `{key} = ...`: every argument of #[daemon] is `key = value`"),
                )
            })?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(Error::new_spanned(
                    quote!(#key #eq),
                    format!("missing value after `{name} =`: expected {expected}"),
                ));
            }
            options.set(&key, input)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(options)
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
            format!("expected `key = value`, found the path `{text}`: #[daemon] takes `key = value` arguments only"),
        ));
    }
    if !input.peek(Token![=]) && (input.is_empty() || input.peek(Token![,])) {
        return Err(Error::new(
            key.span(),
            format!("expected `key = value`, found a bare `{key}`: #[daemon] takes `key = value` arguments only"),
        ));
    }
    Ok(key)
}

impl Options {
    /// Stores the value of `key`, which the input holds next.
    fn set(&mut self, key: &Ident, input: ParseStream) -> Result<()> {
        let name = key.unraw().to_string();
        match name.as_str() {
            "umask" => put(&mut self.umask, key, parse_umask(input)?),
            "workdir" => put(&mut self.workdir, key, parse_path(input, "workdir")?),
            "pid_file" => put(&mut self.pid_file, key, parse_path(input, "pid_file")?),
            "stdout" => put(&mut self.stdout, key, parse_path(input, "stdout")?),
            "stderr" => put(&mut self.stderr, key, parse_path(input, "stderr")?),
            "user" => put(&mut self.user, key, parse_name(input, "user")?),
            "group" => put(&mut self.group, key, parse_name(input, "group")?),
            "chroot" => put(&mut self.chroot, key, parse_path(input, "chroot")?),
            "keep_fds" => put(&mut self.keep_fds, key, parse_fds(input)?),
            "ready" => put(&mut self.ready, key, parse_ready(input)?),
            "ready_timeout" => put(&mut self.ready_timeout, key, parse_timeout(input)?),
            "crate" => {
                let path = parse_crate(input)?;
                if self.krate.is_some() {
                    return Err(duplicate(key));
                }
                self.krate = Some(path);
                Ok(())
            }
            _ => Err(unknown(key, &name)),
        }
    }
}

/// Stores a value once; a second occurrence of the key is an error on that key.
fn put<T>(slot: &mut Option<Spanned<T>>, key: &Ident, value: Spanned<T>) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    *slot = Some(value);
    Ok(())
}

fn duplicate(key: &Ident) -> Error {
    Error::new(
        key.span(),
        format!("duplicate key `{key}`: each key may be given once"),
    )
}

fn unknown(key: &Ident, name: &str) -> Error {
    let mut message = format!("unknown key `{name}`");
    if let Some(near) = closest(name) {
        message.push_str(&format!(": did you mean `{near}`?"));
    }
    message.push_str(&format!(" The keys are: {}", KEYS.join(", ")));
    Error::new(key.span(), message)
}

/// The key closest to a misspelt one, if any is close (edit distance at most a third of its length).
fn closest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= k.len().max(3) / 3)
        .min()
        .map(|(_, k)| k)
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two adjacent
/// characters (`umsak` for `umask`) each count 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: the distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    d[0] = (0..=b.len()).collect();
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Parses a literal and describes what was found when it is not the expected kind.
fn parse_lit(input: ParseStream, key: &str, expected: &str) -> Result<Lit> {
    if input.is_empty() || input.peek(Token![,]) {
        return Err(input.error(format!("expected {expected} for `{key}`")));
    }
    if !input.peek(Lit) {
        let found: proc_macro2::TokenTree = input.parse()?;
        return Err(Error::new(
            found.span(),
            format!(
                "wrong value for `{key}`: expected {expected}, found `{found}` (the value must be a literal)"
            ),
        ));
    }
    input.parse()
}

fn wrong_type(lit: &Lit, key: &str, expected: &str) -> Error {
    Error::new(
        lit.span(),
        format!(
            "wrong value for `{key}`: expected {expected}, found {}",
            describe(lit)
        ),
    )
}

/// [`wrong_type`] for a key that takes an integer: a quoted number (`"0o027"`) gets a hint to unquote it.
fn wrong_int_type(lit: &Lit, key: &str, expected: &str) -> Error {
    let mut error = wrong_type(lit, key, expected);
    if let Lit::Str(s) = lit {
        if let Ok(int) = syn::parse_str::<LitInt>(s.value().trim()) {
            error = Error::new(
                lit.span(),
                format!("{error}; remove the quotes: `{key} = {int}`"),
            );
        }
    }
    error
}

fn describe(lit: &Lit) -> &'static str {
    match lit {
        Lit::Str(_) => "a string literal",
        Lit::ByteStr(_) | Lit::CStr(_) => "a byte string literal",
        Lit::Byte(_) => "a byte literal",
        Lit::Char(_) => "a character literal",
        Lit::Int(_) => "an integer literal",
        Lit::Float(_) => "a float literal",
        Lit::Bool(_) => "a boolean literal",
        _ => "another kind of literal",
    }
}

fn parse_umask(input: ParseStream) -> Result<Spanned<u32>> {
    let lit = parse_lit(input, "umask", UMASK_EXPECTED)?;
    let Lit::Int(int) = &lit else {
        return Err(wrong_int_type(&lit, "umask", UMASK_EXPECTED));
    };
    let value = int_value(int, "umask")?;
    if value > u64::from(UMASK_MAX) {
        return Err(Error::new(
            int.span(),
            format!("umask {value:#o} is out of range: expected a value between 0 and 0o777"),
        ));
    }
    Ok(Spanned {
        value: value as u32,
        span: int.span(),
    })
}

/// The value of an unsuffixed (or `u32`-like) integer literal, in any base.
fn int_value(int: &LitInt, key: &str) -> Result<u64> {
    if !int.suffix().is_empty() {
        return Err(Error::new(
            int.span(),
            format!("`{key}` takes an integer literal without a type suffix, found `{int}`"),
        ));
    }
    int.base10_parse::<u64>()
        .map_err(|_| Error::new(int.span(), format!("`{key}` value `{int}` is too large")))
}

fn parse_string(input: ParseStream, key: &str, expected: &str) -> Result<LitStr> {
    let lit = parse_lit(input, key, expected)?;
    match lit {
        Lit::Str(s) => Ok(s),
        other => Err(wrong_type(&other, key, expected)),
    }
}

/// A path: a non-empty string literal without NUL bytes.
fn parse_path(input: ParseStream, key: &str) -> Result<Spanned<String>> {
    text(parse_string(input, key, PATH_EXPECTED)?, key, "path")
}

/// A user or group: a name or a numeric id, as a non-empty string literal without NUL bytes.
fn parse_name(input: ParseStream, key: &str) -> Result<Spanned<String>> {
    text(parse_string(input, key, &name_expected(key))?, key, "name")
}

fn text(lit: LitStr, key: &str, what: &str) -> Result<Spanned<String>> {
    let value = lit.value();
    if value.is_empty() {
        return Err(Error::new(
            lit.span(),
            format!("`{key}` must not be an empty {what}"),
        ));
    }
    if value.contains('\0') {
        return Err(Error::new(
            lit.span(),
            format!("`{key}` must not contain a NUL byte"),
        ));
    }
    Ok(Spanned {
        value,
        span: lit.span(),
    })
}

fn parse_fds(input: ParseStream) -> Result<Spanned<Vec<i32>>> {
    if !input.peek(syn::token::Bracket) {
        let found: proc_macro2::TokenTree = input.parse()?;
        return Err(Error::new(
            found.span(),
            format!("wrong value for `keep_fds`: expected {FDS_EXPECTED}, found `{found}`"),
        ));
    }
    let content;
    let bracket = syn::bracketed!(content in input);
    let mut fds = Vec::new();
    while !content.is_empty() {
        let lit = parse_lit(
            &content,
            "keep_fds",
            "an fd number (an integer literal above 2)",
        )?;
        let Lit::Int(int) = &lit else {
            return Err(wrong_int_type(
                &lit,
                "keep_fds",
                "an fd number (an integer literal above 2)",
            ));
        };
        let fd = int_value(int, "keep_fds")?;
        if fd <= 2 {
            return Err(Error::new(
                int.span(),
                format!("fd {fd} cannot be kept: stdin, stdout and stderr (0, 1, 2) always point at /dev/null \
                         or the configured files; expected an fd number above 2"),
            ));
        }
        let Ok(fd) = i32::try_from(fd) else {
            return Err(Error::new(
                int.span(),
                format!(
                    "fd {fd} is not a valid file descriptor: expected at most {}",
                    i32::MAX
                ),
            ));
        };
        if fds.contains(&fd) {
            return Err(Error::new(
                int.span(),
                format!("fd {fd} is listed twice in `keep_fds`"),
            ));
        }
        fds.push(fd);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(Spanned {
        value: fds,
        span: bracket.span.join(),
    })
}

fn parse_ready(input: ParseStream) -> Result<Spanned<Ready>> {
    let lit = parse_string(input, "ready", READY_EXPECTED)?;
    let value = match lit.value().as_str() {
        "auto" => Ready::Auto,
        "manual" => Ready::Manual,
        other => {
            return Err(Error::new(
                lit.span(),
                format!("unknown readiness `{other}`: expected {READY_EXPECTED}"),
            ));
        }
    };
    Ok(Spanned {
        value,
        span: lit.span(),
    })
}

fn parse_timeout(input: ParseStream) -> Result<Spanned<u64>> {
    let lit = parse_lit(input, "ready_timeout", TIMEOUT_EXPECTED)?;
    let Lit::Int(int) = &lit else {
        return Err(wrong_int_type(&lit, "ready_timeout", TIMEOUT_EXPECTED));
    };
    let value = int_value(int, "ready_timeout")?;
    if value == 0 {
        return Err(Error::new(
            int.span(),
            "`ready_timeout` must be at least 1 second (0 would give up at once), for example `ready_timeout = 30`",
        ));
    }
    Ok(Spanned {
        value,
        span: int.span(),
    })
}

fn parse_crate(input: ParseStream) -> Result<syn::Path> {
    let lit = parse_string(input, "crate", CRATE_EXPECTED)?;
    let value = lit.value();
    if value.trim().is_empty() {
        return Err(Error::new(
            lit.span(),
            format!("`crate` must not be empty: expected {CRATE_EXPECTED}"),
        ));
    }
    let mut path: syn::Path = lit.parse().map_err(|_| {
        Error::new(
            lit.span(),
            format!("`{value}` is not a path: expected {CRATE_EXPECTED}"),
        )
    })?;
    // Give the path the literal's span, so that errors about it point at the attribute.
    for segment in &mut path.segments {
        segment.ident.set_span(lit.span());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Options> {
        syn::parse_str::<Options>(text)
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn umask_in_any_base() {
        for text in [
            "umask = 0o027",
            "umask = 23",
            "umask = 0x17",
            "umask = 0b10111",
        ] {
            assert_eq!(parse(text).unwrap().umask.unwrap().value, 0o027, "{text}");
        }
        assert!(error("umask = 0o1000").contains("out of range"));
        assert!(error("umask = \"0o27\"").contains("found a string literal"));
        assert!(error("umask = 18u8").contains("suffix"));
        assert!(error("umask = \"0o27\"").contains("remove the quotes: `umask = 0o27`"));
        assert!(!error("umask = \"abc\"").contains("quotes"));
    }

    #[test]
    fn paths_and_names() {
        let options =
            parse(r#"workdir = "/var/lib/app", pid_file = "/run/a.pid", user = "nobody","#)
                .unwrap();
        assert_eq!(options.workdir.unwrap().value, "/var/lib/app");
        assert_eq!(options.pid_file.unwrap().value, "/run/a.pid");
        assert_eq!(options.user.unwrap().value, "nobody");
        assert!(error(r#"workdir = """#).contains("empty path"));
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
    }

    #[test]
    fn keep_fds_ready_timeout_crate() {
        let options =
            parse(r#"keep_fds = [3, 10], ready = "manual", ready_timeout = 5, crate = "::d""#)
                .unwrap();
        assert_eq!(options.keep_fds.unwrap().value, vec![3, 10]);
        assert!(options.ready.unwrap().value == Ready::Manual);
        assert_eq!(options.ready_timeout.unwrap().value, 5);
        assert_eq!(options.krate.unwrap().segments.len(), 1);
        assert!(error("keep_fds = [2]").contains("above 2"));
        assert!(error("keep_fds = [3, 3]").contains("twice"));
        assert!(error("keep_fds = [4294967296]").contains("not a valid file descriptor"));
        assert!(error("keep_fds = 3").contains("found `3`"));
        assert!(error(r#"ready = "later""#).contains("unknown readiness"));
        assert!(error("ready_timeout = 0").contains("at least 1"));
        assert!(error(r#"crate = "not a path""#).contains("not a path"));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("umsak", "umask"), 1);
        assert_eq!(edit_distance("umask", "umask"), 0);
        assert_eq!(edit_distance("", "umask"), 5);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("umsak"), Some("umask"));
        assert_eq!(closest("pidfile"), Some("pid_file"));
        assert_eq!(closest("zzzzzz"), None);
    }
}
