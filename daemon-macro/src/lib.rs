//! The `#[daemon]` attribute of [`daemon-runtime`](https://docs.rs/daemon-runtime).
//!
//! Depend on `daemon-runtime` and write `use daemon_runtime::daemon;`: this crate only generates code that
//! calls the runtime, and the runtime re-exports the attribute with its full documentation.

mod args;
mod expand;
mod key;
mod registry;
mod signature;
mod spelling;
mod value;

use proc_macro::TokenStream;

use expand::Mode;

// No item documentation here: `daemon_runtime` re-exports this attribute with its full documentation
// (keys, defaults, examples), which rustdoc would otherwise follow with this crate's text.
#[proc_macro_attribute]
pub fn daemon(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, Mode::Public)
}

/// What `#[daemon]` on an `async fn main` with `privileged` leaves below the runtime's attribute: the
/// same, on the synchronous `main` the runtime's attribute made, with the privileged value stashed for
/// the async body instead of bound to a parameter. Not public API.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn daemon_stashing(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, Mode::Stash)
}

fn attribute(args: TokenStream, item: TokenStream, mode: Mode) -> TokenStream {
    let args2 = proc_macro2::TokenStream::from(args.clone());
    let item2 = proc_macro2::TokenStream::from(item);
    match run(args, item2.clone(), &args2, mode) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(expand::fallback(item2));
            tokens.into()
        }
    }
}

fn run(
    args: TokenStream,
    item: proc_macro2::TokenStream,
    raw_args: &proc_macro2::TokenStream,
    mode: Mode,
) -> syn::Result<proc_macro2::TokenStream> {
    let options: key::Options = syn::parse(args)?;
    let function: signature::MainFn =
        syn::parse2(item).map_err(|e| syn::Error::new(e.span(), "#[daemon] goes on `fn main`"))?;
    let plan = expand::plan(&function, &options, mode)?;
    Ok(expand::expand(&options, raw_args, function, plan, mode))
}
