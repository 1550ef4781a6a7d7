//! Attribute arguments -> validated options, driven by the key registry (keys.rs). Every value keeps the
//! span of its tokens, and all validation happens here, so that code generation only ever sees
//! well-formed options.

use std::collections::HashSet;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Lit, LitBool, LitInt, LitStr, Result, Token};

use crate::keys::KEYS;

/// One key of the registry: everything the macro knows about it.
pub(crate) struct Key {
    /// The key as the user writes it (`pid_file`), and the name of its builder method.
    pub name: &'static str,
    /// What its value must be.
    pub kind: Kind,
    /// What error messages say is expected, with an example.
    pub expected: &'static str,
    /// What it expands to.
    pub emit: Emit,
    /// What it requires of the other keys.
    pub rules: &'static [Rule],
}

impl Key {
    /// A key that expands to `.NAME(VALUE)` and has no rules.
    pub(crate) const fn new(name: &'static str, kind: Kind, expected: &'static str) -> Key {
        Key {
            name,
            kind,
            expected,
            emit: Emit::Method,
            rules: &[],
        }
    }

    /// The same key, expanding as `emit` says.
    pub(crate) const fn emit(self, emit: Emit) -> Key {
        Key { emit, ..self }
    }

    /// The same key, with rules about the other keys.
    #[allow(dead_code)] // for the keys that have rules (`commands` requires `pid_file`)
    pub(crate) const fn rules(self, rules: &'static [Rule]) -> Key {
        Key { rules, ..self }
    }
}

/// A check of a string value beyond "non-empty, no NUL": `Err` says what is wrong (the error points at the
/// literal and goes on with what the key expects).
pub(crate) type Check = fn(&str) -> std::result::Result<(), String>;

/// The [`Check`] that accepts every string.
pub(crate) fn any(_: &str) -> std::result::Result<(), String> {
    Ok(())
}

/// The kinds of value a key takes.
#[allow(dead_code)] // kinds the registry does not use yet are there for the keys to come
pub(crate) enum Kind {
    /// `true` or `false`.
    Bool,
    /// An integer literal in any base (`0o027`, `23`, `0x17`), possibly negative, without a type suffix,
    /// within `min..=max`.
    Int { min: i128, max: i128 },
    /// `[N, ...]`: integer literals as for `Int`, none twice.
    IntList { min: i128, max: i128 },
    /// A non-empty string literal without NUL bytes, which `check` accepts. `what` names it in errors
    /// ("must not be an empty path").
    Text { what: &'static str, check: Check },
    /// `["...", ...]`: string literals as for `Text`, none twice.
    TextList { what: &'static str, check: Check },
    /// One of a few string literals, expanding to a variant of the runtime's enum `ty`:
    /// `(written, variant)` pairs, e.g. `("manual", "Manual")` -> `::daemon_runtime::Ready::Manual`.
    OneOf {
        ty: &'static str,
        choices: &'static [(&'static str, &'static str)],
    },
    /// A Rust path, unquoted (`setup::bind_port`), for example of a function; expands to itself.
    FnPath,
    /// A string literal holding a path (`"::daemon_runtime"`).
    CratePath,
    /// The key's own parser, for values of several shapes; it returns one of the [`Value`]s the other kinds
    /// produce (and may call [`parse_kind`] for each shape).
    Custom(fn(&'static Key, ParseStream) -> Result<Value>),
}

/// What a key expands to in the builder chain.
pub(crate) enum Emit {
    /// `.NAME(VALUE)`.
    Method,
    /// `.NAME(f(VALUE, KRATE))`: `f` gets the value's tokens and the runtime's path.
    Wrapped(fn(TokenStream, &TokenStream) -> TokenStream),
    /// No builder call: the key steers the expansion itself (`crate`).
    Nothing,
}

/// A rule about other keys, checked once all keys are parsed, when this key is given and is not `= false`.
#[allow(dead_code)] // for the keys that have rules
pub(crate) enum Rule {
    /// `key` must be given too; `why` ends the error message.
    Requires {
        key: &'static str,
        why: &'static str,
    },
    /// Any other rule: `Err` is the error (usually on this key's value).
    Check(fn(&Arg, &Options) -> Result<()>),
}

/// A parsed, validated value, with the span of its tokens.
#[derive(Clone)]
pub(crate) enum Value {
    Bool(LitBool),
    Int(IntValue),
    IntList(Vec<IntValue>, Span),
    Text(TextValue),
    TextList(Vec<TextValue>, Span),
    Choice {
        ty: &'static str,
        variant: &'static str,
        span: Span,
    },
    Path(syn::Path),
}

/// An integer and the span of its literal.
#[derive(Clone, Copy)]
pub(crate) struct IntValue {
    pub value: i128,
    pub span: Span,
}

/// A string and the span of its literal.
#[derive(Clone)]
pub(crate) struct TextValue {
    pub value: String,
    pub span: Span,
}

impl Value {
    /// The span of the value's tokens.
    pub(crate) fn span(&self) -> Span {
        match self {
            Value::Bool(b) => b.span,
            Value::Int(i) => i.span,
            Value::Text(t) => t.span,
            Value::IntList(_, span) | Value::TextList(_, span) | Value::Choice { span, .. } => {
                *span
            }
            Value::Path(path) => path
                .segments
                .first()
                .map_or_else(Span::call_site, |s| s.ident.span()),
        }
    }

    /// The value as an expression, for the builder call.
    pub(crate) fn expr(&self, krate: &TokenStream) -> TokenStream {
        let int = |i: &IntValue| {
            let mut literal = Literal::i128_unsuffixed(i.value);
            literal.set_span(i.span);
            literal.into_token_stream()
        };
        let text = |t: &TextValue| {
            let mut literal = Literal::string(&t.value);
            literal.set_span(t.span);
            literal.into_token_stream()
        };
        match self {
            Value::Bool(b) => b.into_token_stream(),
            Value::Int(i) => int(i),
            Value::IntList(items, span) => {
                let items = items.iter().map(int);
                quote_spanned!(*span=> [#(#items),*])
            }
            Value::Text(t) => text(t),
            // An empty list is typed (`[""; 0]`, a `[&str; 0]`): a bare `[]` leaves a generic builder
            // method's item type to inference, which fails.
            Value::TextList(items, span) if items.is_empty() => quote_spanned!(*span=> [""; 0]),
            Value::TextList(items, span) => {
                let items = items.iter().map(text);
                quote_spanned!(*span=> [#(#items),*])
            }
            Value::Choice { ty, variant, span } => {
                let ty = Ident::new(ty, *span);
                let variant = Ident::new(variant, *span);
                quote_spanned!(*span=> #krate::#ty::#variant)
            }
            Value::Path(path) => path.to_token_stream(),
        }
    }
}

/// One `key = value` of the attribute.
pub(crate) struct Arg {
    /// The registry's entry.
    pub key: &'static Key,
    /// The key as written (its span is the key's).
    pub ident: Ident,
    pub value: Value,
}

impl Arg {
    /// `.NAME(VALUE)`, spanned at the value, or nothing.
    pub(crate) fn builder_call(&self, krate: &TokenStream) -> TokenStream {
        let span = self.value.span();
        let method = Ident::new(self.key.name, self.ident.span());
        let value = self.value.expr(krate);
        match self.key.emit {
            Emit::Method => quote_spanned!(span=> .#method(#value)),
            Emit::Wrapped(wrap) => {
                let value = wrap(value, krate);
                quote_spanned!(span=> .#method(#value))
            }
            Emit::Nothing => TokenStream::new(),
        }
    }
}

/// The validated arguments of one `#[daemon(...)]`, in the order they were written.
#[derive(Default)]
pub(crate) struct Options {
    pub args: Vec<Arg>,
}

impl Options {
    /// The argument of this key, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|arg| arg.key.name == name)
    }

    /// `crate = "..."`, if given.
    pub(crate) fn krate(&self) -> Option<&syn::Path> {
        match self.get("crate").map(|arg| &arg.value) {
            Some(Value::Path(path)) => Some(path),
            _ => None,
        }
    }

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
                    format!(
                        "expected `{ident} = ...`: every argument of #[daemon] is `key = value`"
                    ),
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
}

impl Parse for Options {
    fn parse(input: ParseStream) -> Result<Self> {
        Options::parse_with(input, KEYS)
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

fn unknown(ident: &Ident, name: &str, keys: &[Key]) -> Error {
    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
    let mut message = format!("unknown key `{name}`");
    if let Some(near) = closest(name, &names) {
        message.push_str(&format!(": did you mean `{near}`?"));
    }
    message.push_str(&format!(" The keys are: {}", names.join(", ")));
    Error::new(ident.span(), message)
}

/// The word of `words` closest to a misspelt one, if any is close (edit distance at most a third of its
/// length).
fn closest<'a>(name: &str, words: &[&'a str]) -> Option<&'a str> {
    words
        .iter()
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

/// Parses a value of `kind` for `key` (`kind` is `key.kind`, or one shape of a `Custom` key's value).
pub(crate) fn parse_kind(key: &'static Key, kind: &Kind, input: ParseStream) -> Result<Value> {
    match kind {
        Kind::Bool => parse_bool(key, input).map(Value::Bool),
        Kind::Int { min, max } => parse_int(key, *min, *max, input).map(Value::Int),
        Kind::IntList { min, max } => {
            let (items, span) = parse_list(key, input, |input| parse_int(key, *min, *max, input))?;
            unique(key, &items, |i| i.value, |i| i.span)?;
            Ok(Value::IntList(items, span))
        }
        Kind::Text { what, check } => parse_text(key, what, *check, input).map(Value::Text),
        Kind::TextList { what, check } => {
            let (items, span) =
                parse_list(key, input, |input| parse_text(key, what, *check, input))?;
            unique(key, &items, |t| t.value.clone(), |t| t.span)?;
            Ok(Value::TextList(items, span))
        }
        Kind::OneOf { ty, choices } => {
            let lit = parse_str(key, input)?;
            let value = lit.value();
            match choices.iter().find(|(written, _)| *written == value) {
                Some((_, variant)) => Ok(Value::Choice {
                    ty,
                    variant,
                    span: lit.span(),
                }),
                None => {
                    let written: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                    let mut message = format!(
                        "unknown value `{value}` for `{}`: expected {}",
                        key.name, key.expected
                    );
                    if let Some(near) = closest(&value, &written) {
                        message.push_str(&format!(". Did you mean \"{near}\"?"));
                    }
                    Err(Error::new(lit.span(), message))
                }
            }
        }
        Kind::FnPath => parse_fn_path(key, input).map(Value::Path),
        Kind::CratePath => parse_crate(key, input).map(Value::Path),
        Kind::Custom(parse) => parse(key, input),
    }
}

/// `[item, ...]` with a trailing comma allowed; the span is the brackets'.
fn parse_list<T>(
    key: &Key,
    input: ParseStream,
    item: impl Fn(ParseStream) -> Result<T>,
) -> Result<(Vec<T>, Span)> {
    if !input.peek(syn::token::Bracket) {
        let found: proc_macro2::TokenTree = input.parse()?;
        return Err(Error::new(
            found.span(),
            format!(
                "wrong value for `{}`: expected {}, found `{found}`",
                key.name, key.expected
            ),
        ));
    }
    let content;
    let bracket = syn::bracketed!(content in input);
    let mut items = Vec::new();
    while !content.is_empty() {
        items.push(item(&content)?);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok((items, bracket.span.join()))
}

/// Refuses a list that names an item twice, on the second one.
fn unique<T, K: std::hash::Hash + Eq + std::fmt::Debug>(
    key: &Key,
    items: &[T],
    id: impl Fn(&T) -> K,
    span: impl Fn(&T) -> Span,
) -> Result<()> {
    let mut seen = HashSet::new();
    for item in items {
        let id = id(item);
        if seen.contains(&id) {
            return Err(Error::new(
                span(item),
                format!("{id:?} is listed twice in `{}`", key.name),
            ));
        }
        seen.insert(id);
    }
    Ok(())
}

/// Parses a literal and describes what was found when it is not one.
fn parse_lit(key: &Key, input: ParseStream) -> Result<Lit> {
    if input.is_empty() || input.peek(Token![,]) {
        // (A missing value after `key =` is caught before: this is a missing item of a list.)
        return Err(input.error(format!(
            "an item is missing in the list of `{}`, which takes {}",
            key.name, key.expected
        )));
    }
    if !input.peek(Lit) {
        let found: proc_macro2::TokenTree = input.parse()?;
        return Err(Error::new(
            found.span(),
            format!(
                "wrong value for `{}`: expected {}, found `{found}` (the value must be a literal)",
                key.name, key.expected
            ),
        ));
    }
    input.parse()
}

fn wrong_type(lit: &Lit, key: &Key) -> Error {
    Error::new(
        lit.span(),
        format!(
            "wrong value for `{}`: expected {}, found {}",
            key.name,
            key.expected,
            describe(lit)
        ),
    )
}

/// [`wrong_type`] for a key that takes an integer or a bool: a quoted one (`"0o027"`, `"true"`) gets a
/// hint to unquote it.
fn wrong_type_quoted(lit: &Lit, key: &Key, unquoted: impl Fn(&str) -> bool) -> Error {
    let mut error = wrong_type(lit, key);
    if let Lit::Str(s) = lit {
        let inner = s.value();
        if unquoted(inner.trim()) {
            error = Error::new(
                lit.span(),
                format!(
                    "{error}; remove the quotes: `{} = {}`",
                    key.name,
                    inner.trim()
                ),
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

fn parse_bool(key: &Key, input: ParseStream) -> Result<LitBool> {
    match parse_lit(key, input)? {
        Lit::Bool(b) => Ok(b),
        other => Err(wrong_type_quoted(&other, key, |s| {
            s == "true" || s == "false"
        })),
    }
}

/// The one integer parser: any base, an optional minus sign, no type suffix, within `min..=max`.
fn parse_int(key: &Key, min: i128, max: i128, input: ParseStream) -> Result<IntValue> {
    let lit = parse_lit(key, input)?;
    let Lit::Int(int) = &lit else {
        return Err(wrong_type_quoted(&lit, key, |s| {
            syn::parse_str::<LitInt>(s).is_ok()
        }));
    };
    if !int.suffix().is_empty() {
        return Err(Error::new(
            int.span(),
            format!(
                "`{}` takes an integer literal without a type suffix, found `{int}`",
                key.name
            ),
        ));
    }
    let out_of_range = || {
        Error::new(
            int.span(),
            format!(
                "`{int}` is out of range for `{}`: expected {}",
                key.name, key.expected
            ),
        )
    };
    let value = int.base10_parse::<i128>().map_err(|_| out_of_range())?;
    if !(min..=max).contains(&value) {
        return Err(out_of_range());
    }
    Ok(IntValue {
        value,
        span: int.span(),
    })
}

fn parse_str(key: &Key, input: ParseStream) -> Result<LitStr> {
    match parse_lit(key, input)? {
        Lit::Str(s) => Ok(s),
        other => Err(wrong_type(&other, key)),
    }
}

/// A non-empty string literal without NUL bytes, which `check` accepts.
fn parse_text(key: &Key, what: &str, check: Check, input: ParseStream) -> Result<TextValue> {
    let lit = parse_str(key, input)?;
    let value = lit.value();
    let refuse = |message: String| Err(Error::new(lit.span(), message));
    if value.is_empty() {
        return refuse(format!("`{}` must not be an empty {what}", key.name));
    }
    if value.contains('\0') {
        return refuse(format!("`{}` must not contain a NUL byte", key.name));
    }
    if let Err(why) = check(&value) {
        return refuse(format!(
            "wrong value for `{}`: {why}; expected {}",
            key.name, key.expected
        ));
    }
    Ok(TextValue {
        value,
        span: lit.span(),
    })
}

/// A Rust path, unquoted: `f`, `setup::bind_port`, `crate::setup::bind_port`, `::app::f`.
fn parse_fn_path(key: &Key, input: ParseStream) -> Result<syn::Path> {
    if input.peek(Lit) {
        let lit = parse_lit(key, input)?;
        return Err(wrong_type_quoted(&lit, key, |s| {
            syn::parse_str::<syn::Path>(s).is_ok()
        }));
    }
    input.call(syn::Path::parse_mod_style).map_err(|e| {
        Error::new(
            e.span(),
            format!("wrong value for `{}`: expected {}", key.name, key.expected),
        )
    })
}

fn parse_crate(key: &Key, input: ParseStream) -> Result<syn::Path> {
    let lit = parse_str(key, input)?;
    let value = lit.value();
    if value.trim().is_empty() {
        return Err(Error::new(
            lit.span(),
            format!(
                "`{}` must not be empty: expected {}",
                key.name, key.expected
            ),
        ));
    }
    // Mod-style: no generic arguments, which an attribute's path (`#[krate::daemon]`) cannot carry.
    let mut path: syn::Path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
        Error::new(
            lit.span(),
            format!("`{value}` is not a path: expected {}", key.expected),
        )
    })?;
    // Give the path the literal's span, so that errors about it point at the attribute.
    for segment in &mut path.segments {
        segment.ident.set_span(lit.span());
    }
    if let Some(colons) = &mut path.leading_colon {
        colons.spans = [lit.span(); 2];
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
        assert!(error("umask = 99999999999999999999999999999999999999999").contains("out of range"));
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
            parse(r#"keep_fds = [3, 10,], ready = "manual", ready_timeout = 5, crate = "::d""#)
                .unwrap();
        assert_eq!(options.krate().unwrap().segments.len(), 1);
        assert_eq!(
            calls(&options),
            quote!(
                .keep_fds([3, 10])
                .ready(::daemon_runtime::Ready::Manual)
                .ready_timeout(::core::time::Duration::from_secs(5))
            )
            .to_string()
        );
        assert!(error("keep_fds = [2]").contains("above 2"));
        assert!(error("keep_fds = [3, 3]").contains("listed twice"));
        assert!(error("keep_fds = [3,,4]").contains("an item is missing in the list of `keep_fds`"));
        assert!(error("keep_fds = [4294967296]").contains("out of range"));
        assert!(error("keep_fds = 3").contains("found `3`"));
        assert!(error(r#"ready = "later""#).contains("unknown value `later` for `ready`"));
        assert!(error(r#"ready = "manul""#).contains("Did you mean \"manual\""));
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

    /// The registry is consistent: unique names, rules that name real keys, and every key in the rustdoc
    /// keys table of `daemon_runtime::daemon`.
    #[test]
    fn registry_is_consistent() {
        let runtime_docs = include_str!("../../daemon-runtime/src/lib.rs");
        let mut names = HashSet::new();
        for key in KEYS {
            assert!(names.insert(key.name), "`{}` is listed twice", key.name);
            assert!(
                runtime_docs
                    .lines()
                    .any(|line| line.starts_with("/// |")
                        && line.contains(&format!("`{}`", key.name))),
                "`{}` is missing from the keys table in daemon-runtime/src/lib.rs",
                key.name
            );
            for rule in key.rules {
                if let Rule::Requires { key: other, .. } = rule {
                    assert!(KEYS.iter().any(|k| k.name == *other), "`{other}`");
                }
            }
        }
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
        syn::parse::Parser::parse_str(
            |input: ParseStream| Options::parse_with(input, FUTURE),
            text,
        )
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
