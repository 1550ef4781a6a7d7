//! Code generation from validated options and the user's `fn main`.
//!
//! What each plan generates (`::daemon_runtime` is `crate = "..."` when given; `__daemon_*` locals have
//! mixed-site hygiene, so the body can neither see nor shadow them):
//!
//! [`Plan::Wrap`], a synchronous `fn main`:
//!
//! ```text
//! #[daemon(umask = 0o027, ready_timeout = 30)]
//! fn main() -> Result<(), MyError> {
//!     body
//! }
//! ```
//!
//! becomes
//!
//! ```text
//! fn main() -> Result<(), MyError> {
//!     let __daemon_builder = ::daemon_runtime::Daemon::new()
//!         .umask(0o027)
//!         .ready_timeout(::core::time::Duration::from_secs(30));
//!     let __daemon_binary = ::core::option_env!("CARGO_BIN_NAME").is_some() && !::core::cfg!(test);
//!     let __daemon_module = ::core::module_path!();
//!     let __daemon_function = ::core::any::type_name_of_val(&main);
//!     // (the SAFETY argument is in `expand` below)
//!     let __daemon_running = unsafe {
//!         ::daemon_runtime::__private::start(
//!             __daemon_builder, __daemon_module, __daemon_function, __daemon_binary,
//!         )
//!     };
//!     #[allow(clippy::redundant_closure_call, clippy::let_unit_value, clippy::unused_unit)]
//!     let __daemon_result: Result<(), MyError> = (|| -> Result<(), MyError> { body })();
//!     #[allow(unused_imports, clippy::needless_borrow)]
//!     let __daemon_failure = {
//!         use ::daemon_runtime::__private::{DescribeDebug as _, DescribeDisplay as _, DescribeOther as _};
//!         (&&&::daemon_runtime::__private::Outcome(&__daemon_result)).describe()
//!     };
//!     ::daemon_runtime::__private::finish(__daemon_running, __daemon_failure);
//!     __daemon_result
//! }
//! ```
//!
//! With `privileged = setup::bind` on `fn main(listener: TcpListener)`, the function's value becomes the
//! parameter, which `main` no longer takes (the privileged function is evaluated outside the `unsafe`
//! block too):
//!
//! ```text
//!     let __daemon_privileged = setup::bind;
//!     let (__daemon_running, __daemon_value) = unsafe {
//!         ::daemon_runtime::__private::start_privileged(
//!             __daemon_builder, __daemon_privileged, __daemon_module, __daemon_function, __daemon_binary,
//!         )
//!     };
//!     let listener: TcpListener = __daemon_value;
//! ```
//!
//! The body runs in a closure, so that its `return`s and `?`s land where the pid file is released after
//! them; the closure is outside the `unsafe` block, so the body gets no unsafety it did not write. Where
//! the return type mentions `impl Trait` (which a closure or a local cannot name), both are left to
//! inference. A `-> !` main ends with `(|| -> ! { body })()` instead, as it never returns.
//!
//! [`Plan::BelowRuntime`], an `async fn main` under a runtime's attribute:
//!
//! ```text
//! #[daemon(umask = 0o027)]
//! #[tokio::main]
//! async fn main() { body }
//! ```
//!
//! becomes (and the runtime's attribute then turns `main` synchronous, and `#[daemon]` wraps that `main`
//! as above, so the fork happens before the runtime starts any thread)
//!
//! ```text
//! #[tokio::main]
//! #[::daemon_runtime::daemon(umask = 0o027)]
//! async fn main() { body }
//! ```
//!
//! The body is never parsed: it stays tokens, as tokio-macros keeps it, so that a syntax error in it is
//! rustc's alone (no second error from the attribute). Inner attributes (`#![allow(...)]` at the top of the
//! body) move outside, onto the function, as syn and tokio do, since the body becomes a closure's.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Error, ReturnType};

use crate::key::Options;
use crate::signature::{MainFn, Param};

/// Which attribute is expanding: the public `#[daemon]`, or the hidden one that `#[daemon]` on an
/// `async fn main` with `privileged` leaves below the runtime's attribute (see [`Plan::BelowRuntime`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `#[daemon]`.
    Public,
    /// The synchronous `main` a runtime's attribute made of an `async fn main` whose parameter took the
    /// privileged value: the value is stashed for the async body instead of bound to a parameter.
    Stash,
}

/// What to do with the user's function.
#[derive(Clone, Copy)]
pub(crate) enum Plan {
    /// A synchronous `fn main`: wrap its body.
    Wrap,
    /// An `async fn main` under a runtime attribute at this index of its attributes: move `#[daemon]` below
    /// that attribute, so that the runtime's attribute turns main synchronous first and `#[daemon]` then
    /// forks before the runtime is built.
    BelowRuntime(usize),
}

/// Checks the function's shape and decides how to expand it.
pub(crate) fn plan(item: &MainFn, options: &Options, mode: Mode) -> syn::Result<Plan> {
    let sig = &item.sig;
    if sig.ident != "main" {
        return Err(Error::new(
            sig.ident.span(),
            format!("#[daemon] goes on `fn main`, found `fn {}`", sig.ident),
        ));
    }
    if let Some(token) = sig.constness {
        return Err(Error::new(
            token.span,
            "#[daemon] cannot go on a `const fn main`: it daemonizes at run time",
        ));
    }
    match (options.get("privileged"), sig.inputs.len()) {
        (None, 0) => {}
        // The stashing attribute's `main` lost its parameter to the async body (see `expand`).
        (Some(_), 0) if mode == Mode::Stash => {}
        (None, _) => {
            return Err(Error::new_spanned(
                &sig.inputs,
                "`fn main` takes no arguments: read them with `std::env::args()` in the body (a \
                 parameter takes the value of `privileged = ...`, when that key is given)",
            ));
        }
        (Some(arg), 0) => {
            return Err(Error::new(
                arg.value.span(),
                "`privileged` hands its function's value to `main`: give `fn main` one parameter of \
                 that type, e.g. `fn main(listener: std::net::TcpListener)`",
            ));
        }
        (Some(_), 1) => {
            if let Some(receiver) = sig.inputs.first().filter(|p| p.is_receiver()) {
                return Err(Error::new_spanned(receiver, "`fn main` takes no `self`"));
            }
        }
        (Some(_), _) => {
            return Err(Error::new_spanned(
                &sig.inputs,
                "`fn main` takes one parameter, the value of `privileged = ...` (return a tuple or a \
                 struct from that function to hand over several values)",
            ));
        }
    }
    if !sig.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &sig.generics,
            "`fn main` takes no generic parameters",
        ));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(Error::new_spanned(
            clause,
            "`fn main` takes no `where` clause",
        ));
    }
    if let Some(again) = item.attrs.iter().find(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "daemon")
    }) {
        return Err(Error::new_spanned(
            again,
            "#[daemon] is given twice: the second would daemonize the daemon again",
        ));
    }
    match (sig.asyncness, runtime_attribute(&item.attrs)) {
        (None, _) => Ok(Plan::Wrap),
        (Some(_), Some(index)) => Ok(Plan::BelowRuntime(index)),
        (Some(token), None) => Err(Error::new(
            token.span,
            "`async fn main` needs an async runtime to run it: add `#[tokio::main]` (or your runtime's \
             main attribute) above or below #[daemon]; the daemon forks before the runtime starts",
        )),
    }
}

/// The index of an async runtime's entry attribute, if any: one whose path ends in `main` or `test`
/// (`#[tokio::main]`, `#[async_std::main]`, or `#[main]` after `use tokio::main`, as tokio's docs show).
/// Which crate a single-segment path names is unknowable to a macro; `async fn main` needs one anyway.
fn runtime_attribute(attrs: &[Attribute]) -> Option<usize> {
    attrs.iter().position(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "main" || s.ident == "test")
    })
}

/// The path of the runtime crate: `crate = "..."` or `::daemon_runtime`.
fn krate(options: &Options) -> TokenStream {
    match options.krate() {
        Some(path) => path.to_token_stream(),
        None => quote!(::daemon_runtime),
    }
}

/// Expands the attribute.
pub(crate) fn expand(
    options: &Options,
    args: &TokenStream,
    mut item: MainFn,
    plan: Plan,
    mode: Mode,
) -> TokenStream {
    let krate = krate(options);
    match plan {
        Plan::BelowRuntime(index) => below_runtime(options, args, &krate, item, index),
        Plan::Wrap => {
            // `privileged = f`: `main`'s one parameter takes f's value, typed as the user wrote it (a
            // mismatch is rustc's error on the parameter's type); `main` itself takes none.
            let value = syn::Ident::new("__daemon_value", Span::mixed_site());
            // The same local, located at the function's path: a type mismatch points at it.
            let value_at = match options.get("privileged") {
                Some(arg) => syn::Ident::new(
                    "__daemon_value",
                    Span::mixed_site().located_at(arg.value.span()),
                ),
                None => value.clone(),
            };
            let parameter = match item.sig.inputs.pop() {
                Some(param @ Param { ty: Some(_), .. }) => {
                    let (pat, ty) = (&param.pat, param.ty.as_ref());
                    let attrs = param.let_attrs();
                    quote_spanned!(ty.span()=> #(#attrs)* let #pat: #ty = #value_at;)
                }
                _ if mode == Mode::Stash => {
                    quote!(#krate::__private::stash_privileged(#value);)
                }
                _ => TokenStream::new(),
            };
            let builder = builder(options, &krate);
            let ident = &item.sig.ident;
            // Mixed-site hygiene: the body cannot see (or clash with) these locals.
            let local = |name: &str| syn::Ident::new(name, Span::mixed_site());
            let (daemon, binary, module, function) = (
                local("__daemon_builder"),
                local("__daemon_binary"),
                local("__daemon_module"),
                local("__daemon_function"),
            );
            let running = local("__daemon_running");
            let privileged = options.get("privileged").map(|arg| arg.value.expr(&krate));
            let call = match &privileged {
                Some(code) => {
                    let function_value = local("__daemon_privileged");
                    quote!(
                        let #function_value = #code;
                        let (#running, #value) = unsafe {
                            #krate::__private::start_privileged(
                                #daemon, #function_value, #module, #function, #binary,
                            )
                        };
                    )
                }
                None => quote!(
                    let #running = unsafe {
                        #krate::__private::start(#daemon, #module, #function, #binary)
                    };
                ),
            };
            // Everything but the call is evaluated outside the `unsafe` block, which holds one operation
            // on locals: no token of the user's (a value such as `privileged`'s path, which could name a
            // `static mut`) and no macro call (`module_path!`, which an `extern crate x as core` could
            // replace) is inside. Its tokens come from this macro (call-site spans), so the
            // `unsafe_code` lint treats it as an external macro's and a user's `#![forbid(unsafe_code)]`
            // still compiles (tests/ui/pass/forbid_unsafe_code.rs).
            let start = quote!(
                let #daemon = #builder;
                let #module = ::core::module_path!();
                let #binary = ::core::option_env!("CARGO_BIN_NAME").is_some() && !::core::cfg!(test);
                let #function = ::core::any::type_name_of_val(&#ident);
                // SAFETY: `start`'s contract holds. This call is the first statement of the `fn main`
                // the attribute decorates, with that function's `module_path!()` and `type_name`, and
                // whether its crate is a binary being built as one. If so and it is the crate-root `main`
                // on its first call, it is the program's entry: no code of the program has run yet, so no
                // object owns an fd above 2 (code run before `main` by `.init_array` constructors is the
                // exception `start` documents). Anywhere else `start` spares the fds the program owns.
                // (`start_privileged` has the same contract; the privileged function runs inside it as
                // safe code, like the builder's closure.)
                #call
                #parameter
            );
            let body = run_body(&item, &krate, &running);
            item.with_body(quote!(#start #body))
        }
    }
}

/// The body, run in a closure whose outcome is reported (see the module's documentation): `running`
/// is the local holding the `Running` handle.
fn run_body(item: &MainFn, krate: &TokenStream, running: &syn::Ident) -> TokenStream {
    let block = item.block();
    let span = item.brace.span.join();
    let local = |name: &str| syn::Ident::new(name, Span::mixed_site());
    let result = local("__daemon_result");
    match &item.sig.output {
        // `-> !` never returns: there is nothing to report, and `!` cannot name a local's type.
        ReturnType::Type(arrow, ty) if matches!(**ty, syn::Type::Never(_)) => {
            quote_spanned! {span=>
                #[allow(clippy::redundant_closure_call)]
                (|| #arrow #ty #block)()
            }
        }
        output => {
            // The closure's type is written out wherever it can be named: a body that never
            // returns (`loop {}`, `process::exit`, a `-> !` call) would otherwise leave it to
            // inference, and the describing below would then take it for a `Result`.
            let (closure_output, binding) = match output {
                ReturnType::Default => (quote!(-> ()), quote!(: ())),
                ReturnType::Type(arrow, ty) if !contains_impl(&ty.to_token_stream()) => {
                    (quote!(#arrow #ty), quote!(: #ty))
                }
                ReturnType::Type(..) => (TokenStream::new(), TokenStream::new()),
            };
            let body = quote_spanned! {span=>
                #[allow(
                    clippy::redundant_closure_call,
                    clippy::let_unit_value,
                    clippy::unused_unit
                )]
                let #result #binding = (|| #closure_output #block)();
            };
            let failure = local("__daemon_failure");
            quote!(
                #body
                #[allow(unused_imports, clippy::needless_borrow)]
                let #failure = {
                    use #krate::__private::{
                        DescribeDebug as _, DescribeDisplay as _, DescribeOther as _,
                    };
                    (&&&#krate::__private::Outcome(&#result)).describe()
                };
                #krate::__private::finish(#running, #failure);
                #result
            )
        }
    }
}

/// [`Plan::BelowRuntime`]: `#[daemon]` moves below the runtime's attribute at `index`. With `privileged`,
/// the parameter moves into the body, which takes the value the stashing attribute below the runtime's
/// put aside (see `Mode::Stash`).
fn below_runtime(
    options: &Options,
    args: &TokenStream,
    krate: &TokenStream,
    mut item: MainFn,
    index: usize,
) -> TokenStream {
    let privileged = options.get("privileged");
    let parameter = privileged.and_then(|_| item.sig.inputs.pop());
    let (ours, body) = match (privileged, parameter) {
        // A runtime's attribute refuses a `main` with parameters: the parameter moves into the
        // body, which takes the value the stashing attribute below the runtime's put aside
        // before the runtime was built (on this thread: the runtime runs main's future here).
        // Its type is checked against the privileged function's at compile time.
        (Some(arg), Some(param @ Param { ty: Some(_), .. })) => {
            let body = &item.body;
            let code = arg.value.expr(krate);
            // Located at the function's path: a type mismatch points at it.
            let value = syn::Ident::new(
                "__daemon_value",
                Span::mixed_site().located_at(arg.value.span()),
            );
            let (pat, ty) = (&param.pat, param.ty.as_ref());
            let attrs = param.let_attrs();
            (
                syn::parse_quote!(#[#krate::__private::daemon_stashing(#args)]),
                quote!(
                    let #value = #krate::__private::privileged_value(#code);
                    #(#attrs)* let #pat: #ty = #value;
                    #body
                ),
            )
        }
        _ => (
            syn::parse_quote!(#[#krate::daemon(#args)]),
            item.body.clone(),
        ),
    };
    item.attrs.insert(index + 1, ours);
    item.with_body(body)
}

/// Whether a return type mentions `impl Trait`, which a closure's return type cannot name, at any depth
/// (`Result<(), (impl Debug)>` holds it in a group).
fn contains_impl(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Group(g) => contains_impl(&g.stream()),
        _ => false,
    })
}

/// `Daemon::new()` and the builder call of every key that has one, in the order they were written. With a
/// key of one of the runtime's features (`control`), the chain goes through the runtime's macro of that
/// feature (`control_keys!`), which passes it on with the feature, and without it is a compile error
/// naming the key and the feature (only the runtime knows its features).
fn builder(options: &Options, krate: &TokenStream) -> TokenStream {
    let calls = options.args.iter().map(|arg| arg.builder_call(krate));
    let chain = quote!(#krate::Daemon::new() #(#calls)*);
    match options
        .args
        .iter()
        .find_map(|arg| Some((arg, arg.feature()?)))
    {
        Some((arg, feature)) => {
            let key = arg.key.name;
            // Every token of the invocation but the chain on the key, so that the error points at it.
            let span = arg.ident.span();
            let keys = format_ident!("{feature}_keys", span = span);
            let krate: TokenStream = krate
                .clone()
                .into_iter()
                .map(|mut token| {
                    token.set_span(span);
                    token
                })
                .collect();
            quote_spanned!(span=> #krate::__private::#keys!(#key, #chain))
        }
        None => chain,
    }
}

/// What to emit next to a compile error: the user's item, in a form that compiles, so that our error is
/// the only one (no "`main` function not found", "`main` cannot be async" or "`main` has the wrong type"
/// after it).
///
/// A `main` whose shape is wrong (async without a runtime, arguments, generics) gets a signature that
/// rustc accepts, and its body moves, unchanged, into a nested function with the original signature, which
/// is never called: the body is still type-checked (its own errors are real ones) and the imports it uses
/// stay used (no "unused import" warning).
pub(crate) fn fallback(item: TokenStream) -> TokenStream {
    let Ok(mut function) = syn::parse2::<MainFn>(item.clone()) else {
        return item;
    };
    let sig = &function.sig;
    let async_without_runtime =
        sig.asyncness.is_some() && runtime_attribute(&function.attrs).is_none();
    let misshapen = async_without_runtime
        || !sig.inputs.is_empty()
        || !sig.generics.params.is_empty()
        || sig.generics.where_clause.is_some();
    if sig.ident != "main" || !misshapen {
        return item;
    }
    let mut body_sig = function.sig.clone();
    body_sig.ident = syn::Ident::new("__daemon_main_body", Span::call_site());
    if async_without_runtime {
        function.sig.asyncness = None;
    }
    function.sig.inputs.clear();
    function.sig.generics = syn::Generics::default();
    let block = function.block();
    function.with_body(quote!(
        #[allow(dead_code)]
        #body_sig #block
        ::core::unimplemented!()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impl_is_found_in_groups() {
        assert!(contains_impl(&quote!(impl Debug)));
        assert!(contains_impl(&quote!(Result<(), (impl Debug)>)));
        assert!(contains_impl(&quote!(Box<[(u8, (impl Debug))]>)));
        assert!(!contains_impl(&quote!(Result<(), Box<dyn Debug>>)));
    }

    #[test]
    fn runtime_attributes() {
        let attrs: Vec<Attribute> =
            vec![syn::parse_quote!(#[doc = "x"]), syn::parse_quote!(#[main])];
        assert_eq!(runtime_attribute(&attrs), Some(1));
        let attrs: Vec<Attribute> =
            vec![syn::parse_quote!(#[tokio::main(flavor = "current_thread")])];
        assert_eq!(runtime_attribute(&attrs), Some(0));
        let attrs: Vec<Attribute> = vec![syn::parse_quote!(#[tokio::test])];
        assert_eq!(runtime_attribute(&attrs), Some(0));
        let attrs: Vec<Attribute> = vec![syn::parse_quote!(#[inline])];
        assert_eq!(runtime_attribute(&attrs), None);
    }

    #[test]
    fn body_stays_tokens() {
        let item: MainFn = syn::parse_quote!(
            /// doc
            fn main() {
                #![allow(unused)]
                let x = ;
            }
        );
        assert_eq!(item.attrs.len(), 2, "the inner attribute moves outside");
        assert_eq!(item.body.to_string(), quote!(let x = ;).to_string());
    }
}
