//! The user's `fn main`, parsed with syn's `derive` feature only (the `full` feature, which parses every
//! expression, statement and pattern of Rust, roughly doubles syn's build time): attributes, visibility
//! and the signature are parsed, a parameter's pattern and the body stay tokens. rustc checks what the
//! attribute does not need to understand.

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{
    AttrStyle, Attribute, Generics, ReturnType, Token, Type, Visibility, WhereClause, token,
};

/// The user's function: attributes, visibility and signature parsed; the body kept as tokens.
pub(crate) struct MainFn {
    /// The outer attributes, then the body's inner attributes made outer.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) brace: token::Brace,
    /// The body's statements, unparsed.
    pub(crate) body: TokenStream,
}

/// `const async unsafe extern "C" fn name<generics>(params) -> output where ...`.
#[derive(Clone)]
pub(crate) struct Signature {
    pub(crate) constness: Option<Token![const]>,
    pub(crate) asyncness: Option<Token![async]>,
    pub(crate) unsafety: Option<Token![unsafe]>,
    pub(crate) abi: Option<syn::Abi>,
    pub(crate) fn_token: Token![fn],
    pub(crate) ident: Ident,
    /// With the `where` clause, which comes after the output.
    pub(crate) generics: Generics,
    pub(crate) paren: token::Paren,
    pub(crate) inputs: Punctuated<Param, Token![,]>,
    pub(crate) output: ReturnType,
}

/// One parameter: `pattern: Type`, or a receiver (`self`, `&mut self`, `self: Box<Self>`).
#[derive(Clone)]
pub(crate) struct Param {
    /// Its outer attributes (`#[allow(unused)]`, a doc comment).
    pub(crate) attrs: Vec<Attribute>,
    /// The pattern's tokens (`listener`, `mut x`, `(a, b)`), or the receiver's.
    pub(crate) pat: TokenStream,
    pub(crate) colon: Option<Token![:]>,
    pub(crate) ty: Option<Type>,
}

impl Param {
    /// Whether this is a method's receiver: `self`, `mut self`, `&self`, `&'a mut self` (a pattern that
    /// merely starts with a `self::` path is not).
    pub(crate) fn is_receiver(&self) -> bool {
        let tokens: Vec<TokenTree> = self.pat.clone().into_iter().collect();
        let Some((TokenTree::Ident(last), before)) = tokens.split_last() else {
            return false;
        };
        if last != "self" {
            return false;
        }
        // What may come before `self`: `&`, then a lifetime (`'` and a name), then `mut`.
        let punct = |token: Option<&&TokenTree>, c: char| matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == c);
        let mut rest = before.iter().peekable();
        if punct(rest.peek(), '&') {
            rest.next();
            if punct(rest.peek(), '\'') {
                rest.next();
                if !matches!(rest.next(), Some(TokenTree::Ident(_))) {
                    return false;
                }
            }
        }
        if matches!(rest.peek(), Some(TokenTree::Ident(i)) if i == "mut") {
            rest.next();
        }
        rest.next().is_none()
    }

    /// The attributes to keep on the `let` that binds the parameter in the body: not doc comments, which
    /// document nothing there.
    pub(crate) fn let_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs
            .iter()
            .filter(|attr| !attr.path().is_ident("doc"))
    }
}

impl Parse for MainFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = syn::braced!(content in input);
        for mut attr in content.call(Attribute::parse_inner)? {
            attr.style = AttrStyle::Outer;
            attrs.push(attr);
        }
        let body = content.parse()?;
        Ok(MainFn {
            attrs,
            vis,
            sig,
            brace,
            body,
        })
    }
}

impl MainFn {
    /// The function with `body` between its braces.
    pub(crate) fn with_body(&self, body: TokenStream) -> TokenStream {
        let MainFn {
            attrs, vis, sig, ..
        } = self;
        let mut tokens = quote!(#(#attrs)* #vis #sig);
        self.brace
            .surround(&mut tokens, |tokens| tokens.extend(body));
        tokens
    }

    /// The original body, braces included.
    pub(crate) fn block(&self) -> TokenStream {
        let mut tokens = TokenStream::new();
        self.brace
            .surround(&mut tokens, |tokens| tokens.extend(self.body.clone()));
        tokens
    }
}

impl Parse for Signature {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let constness = input.parse()?;
        let asyncness = input.parse()?;
        let unsafety = input.parse()?;
        let abi = if input.peek(Token![extern]) {
            Some(input.parse()?)
        } else {
            None
        };
        let fn_token = input.parse()?;
        let ident = input.parse()?;
        let mut generics: Generics = input.parse()?;
        let content;
        let paren = syn::parenthesized!(content in input);
        let inputs = content.parse_terminated(Param::parse, Token![,])?;
        let output = input.call(ReturnType::parse)?;
        generics.where_clause = input.parse::<Option<WhereClause>>()?;
        Ok(Signature {
            constness,
            asyncness,
            unsafety,
            abi,
            fn_token,
            ident,
            generics,
            paren,
            inputs,
            output,
        })
    }
}

impl Parse for Param {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        // The pattern is every token before the first `:` that is not half of a `::` (a path in a
        // pattern); groups (`(a, b)`, `Point { x, y }`) are single tokens.
        let mut pat = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            if input.peek(Token![::]) {
                let colons: Token![::] = input.parse()?;
                colons.to_tokens(&mut pat);
            } else if input.peek(Token![:]) {
                break;
            } else {
                pat.extend([input.parse::<TokenTree>()?]);
            }
        }
        if pat.is_empty() {
            return Err(input.error("expected a parameter"));
        }
        let colon: Option<Token![:]> = input.parse()?;
        let ty = match colon {
            Some(_) => Some(input.parse()?),
            None => None,
        };
        Ok(Param {
            attrs,
            pat,
            colon,
            ty,
        })
    }
}

impl ToTokens for Signature {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.constness.to_tokens(tokens);
        self.asyncness.to_tokens(tokens);
        self.unsafety.to_tokens(tokens);
        self.abi.to_tokens(tokens);
        self.fn_token.to_tokens(tokens);
        self.ident.to_tokens(tokens);
        self.generics.to_tokens(tokens);
        self.paren
            .surround(tokens, |tokens| self.inputs.to_tokens(tokens));
        self.output.to_tokens(tokens);
        self.generics.where_clause.to_tokens(tokens);
    }
}

impl ToTokens for Param {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.pat.to_tokens(tokens);
        self.colon.to_tokens(tokens);
        self.ty.to_tokens(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip() {
        for text in [
            "fn main()",
            "async fn main() -> Result<(), Box<dyn std::error::Error>>",
            "const unsafe extern \"C\" fn main<T: Copy>(x: T) -> ! where T: Send",
            "fn main(mut listener: std::net::TcpListener, (a, b): (u8, u8), Point { x, .. }: Point, &self)",
            "fn main(s: Vec<::std::string::String>, f: fn(u8) -> u8)",
        ] {
            let sig: Signature = syn::parse_str(text).unwrap();
            let printed = sig.to_token_stream().to_string();
            let again: Signature = syn::parse_str(&printed).unwrap();
            assert_eq!(again.to_token_stream().to_string(), printed, "{text}");
        }
        let sig: Signature = syn::parse_str(
            "fn main(a: u8, &mut self, b: u8, self::W(x): self::W, #[allow(unused)] /// d\n c: u8, &'a self, mut self, self: Box<Self>,)",
        )
        .unwrap();
        let receivers: Vec<bool> = sig.inputs.iter().map(Param::is_receiver).collect();
        assert_eq!(
            receivers,
            [false, true, false, false, false, true, true, true]
        );
        assert_eq!(sig.inputs[4].attrs.len(), 2);
        assert_eq!(sig.inputs[4].let_attrs().count(), 1);
        assert_eq!(sig.inputs[0].pat.to_string(), "a");
        let sig: Signature = syn::parse_str("fn main() where u8: Copy").unwrap();
        assert!(sig.generics.where_clause.is_some());
    }
}
