//! The `#[daemon]` attribute of [`daemon-runtime`](https://docs.rs/daemon-runtime).
//!
//! Depend on `daemon-runtime` and write `use daemon_runtime::daemon;`: this crate only generates code that
//! calls the runtime, and the runtime re-exports the attribute with its full documentation.

mod args;
mod expand;
mod keys;

use proc_macro::TokenStream;

// No item documentation here: `daemon_runtime` re-exports this attribute with its full documentation
// (keys, defaults, examples), which rustdoc would otherwise follow with this crate's text.
#[proc_macro_attribute]
pub fn daemon(args: TokenStream, item: TokenStream) -> TokenStream {
    let args2 = proc_macro2::TokenStream::from(args.clone());
    let item2 = proc_macro2::TokenStream::from(item);
    match run(args, item2.clone(), &args2) {
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
) -> syn::Result<proc_macro2::TokenStream> {
    let options: args::Options = syn::parse(args)?;
    let function: expand::MainFn =
        syn::parse2(item).map_err(|e| syn::Error::new(e.span(), "#[daemon] goes on `fn main`"))?;
    let plan = expand::plan(&function, &options)?;
    Ok(expand::expand(&options, raw_args, function, plan))
}
