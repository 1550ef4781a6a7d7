//! The value parsers, one per kind of value: each keeps the span of its tokens and says, on the offending
//! token, what was expected.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::{Error, Lit, LitBool, LitInt, LitStr, Result, Token};

use crate::key::{Check, IntValue, Key, Kind, TextValue, Value};
use crate::spelling::closest;

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
