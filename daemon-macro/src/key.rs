//! The key types: what the registry (registry.rs) says of each key, and what a parsed attribute holds.
//! A leaf: the parsers (value.rs, args.rs) and the code generation (expand.rs) build on it.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote_spanned};
use syn::parse::ParseStream;
use syn::{LitBool, Result};

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
    /// The runtime's cargo feature that has its builder method, if it is not always there.
    pub feature: Option<&'static str>,
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
            feature: None,
        }
    }

    /// The same key, expanding as `emit` says.
    pub(crate) const fn emit(self, emit: Emit) -> Key {
        Key { emit, ..self }
    }

    /// The same key, whose builder method only the runtime's cargo feature `feature` has: given without it,
    /// the key is a compile error that names the feature (the runtime's `__private` macro decides).
    pub(crate) const fn feature(self, feature: &'static str) -> Key {
        Key {
            feature: Some(feature),
            ..self
        }
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
    /// `(written, variant)` pairs, e.g. `("manual", "Manual")` -> `::daemon_runtime::Readiness::Manual`.
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
    /// The runtime's cargo feature this argument needs: its key's, unless it is `false`, the default of
    /// every such switch (`commands = false` written out), which needs no builder call.
    pub(crate) fn feature(&self) -> Option<&'static str> {
        match self.value {
            Value::Bool(LitBool { value: false, .. }) => None,
            _ => self.key.feature,
        }
    }

    /// `.NAME(VALUE)`, spanned at the value, or nothing.
    pub(crate) fn builder_call(&self, krate: &TokenStream) -> TokenStream {
        if self.key.feature.is_some() && self.feature().is_none() {
            return TokenStream::new();
        }
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
}
