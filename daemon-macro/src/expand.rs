//! Code generation from validated options and the user's `fn main`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, Error, ItemFn, ReturnType};

use crate::args::Options;

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
pub(crate) fn plan(item: &ItemFn) -> syn::Result<Plan> {
    let sig = &item.sig;
    if sig.ident != "main" {
        return Err(Error::new(
            sig.ident.span(),
            format!("#[daemon] goes on `fn main`, found `fn {}`", sig.ident),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(Error::new_spanned(
            &sig.inputs,
            "`fn main` takes no arguments: read them with `std::env::args()` in the body",
        ));
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

/// The index of an async runtime's main attribute (`#[tokio::main]`, `#[async_std::main]`, ...), if any.
fn runtime_attribute(attrs: &[Attribute]) -> Option<usize> {
    attrs.iter().position(|attr| {
        let path = attr.path();
        path.segments.len() > 1 && path.segments.last().is_some_and(|s| s.ident == "main")
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
    mut item: ItemFn,
    plan: Plan,
) -> TokenStream {
    let krate = krate(options);
    match plan {
        Plan::BelowRuntime(index) => {
            let ours: Attribute = syn::parse_quote!(#[#krate::daemon(#args)]);
            item.attrs.insert(index + 1, ours);
            item.into_token_stream()
        }
        Plan::Wrap => {
            let builder = builder(options, &krate);
            let block = &item.block;
            let ident = &item.sig.ident;
            // Mixed-site hygiene: the body cannot see (or clash with) these two locals.
            let running = syn::Ident::new("__daemon_running", Span::mixed_site());
            let result = syn::Ident::new("__daemon_result", Span::mixed_site());
            let start = quote!(
                let #running = #krate::__private::start(
                    #builder,
                    ::core::module_path!(),
                    ::core::any::type_name_of_val(&#ident),
                    ::core::option_env!("CARGO_BIN_NAME").is_some() && !::core::cfg!(test),
                );
            );
            let new_block: syn::Block = match &item.sig.output {
                // `-> !` never returns: there is nothing to report, and `!` cannot name a local's type.
                ReturnType::Type(arrow, ty) if matches!(**ty, syn::Type::Never(_)) => {
                    let body = quote_spanned! {block.span()=>
                        #[allow(clippy::redundant_closure_call)]
                        (|| #arrow #ty #block)()
                    };
                    syn::parse_quote!({ #start #body })
                }
                output => {
                    let (closure_output, binding) = match output {
                        ReturnType::Type(arrow, ty) if !contains_impl(ty) => {
                            (quote!(#arrow #ty), quote!(: #ty))
                        }
                        _ => (TokenStream::new(), TokenStream::new()),
                    };
                    let body = quote_spanned! {block.span()=>
                        #[allow(clippy::redundant_closure_call, clippy::let_unit_value)]
                        let #result #binding = (|| #closure_output #block)();
                    };
                    syn::parse_quote!({
                        #start
                        #body
                        #krate::__private::finish(#running, {
                            #[allow(unused_imports)]
                            use #krate::__private::{DescribeError as _, DescribeOther as _};
                            (&#krate::__private::Outcome(&#result)).describe()
                        });
                        #result
                    })
                }
            };
            *item.block = new_block;
            item.into_token_stream()
        }
    }
}

/// Whether a return type mentions `impl Trait`, which a closure's return type cannot name.
fn contains_impl(ty: &syn::Type) -> bool {
    ty.to_token_stream()
        .into_iter()
        .any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "impl"))
}

/// `Daemon::new()` and the builder call of every key that has one, in the order they were written.
fn builder(options: &Options, krate: &TokenStream) -> TokenStream {
    let calls = options.args.iter().map(|arg| arg.builder_call(krate));
    quote!(#krate::Daemon::new() #(#calls)*)
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
    let Ok(mut function) = syn::parse2::<ItemFn>(item.clone()) else {
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
    let block = &function.block;
    *function.block = syn::parse_quote!({
        #[allow(dead_code)]
        #body_sig #block
        ::core::unimplemented!()
    });
    function.into_token_stream()
}
