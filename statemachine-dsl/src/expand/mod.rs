//! Code generation: a validated [`Model`] to the Rust items that `machine!` emits.
//!
//! The output names only `::statemachine::...` and `::core::...` paths, so it compiles in
//! any crate that depends on `statemachine`. [`expand`] turns a clean file into the
//! enums, traits and table; [`expand_fallback`] gives a broken file's caller the same
//! items with empty behaviour, so that the one located error the macro reports is not
//! followed by a cascade of "cannot find type `State`" errors.
//!
//! **Invariant:** expansion is deterministic (file order, never a hash map's) and never
//! panics: every name reaching it is a valid Rust identifier, as validation ensures for
//! models and [`names::Names::from_ast`] ensures for broken files.

mod enums;
mod names;
mod table;
mod traits;

use proc_macro2::TokenStream;
use quote::quote;

use crate::{Model, SourceFile, ast};
use names::Names;

/// Where the machine came from, as the macro found it.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The file's name as the user wrote it (`"../machines/order.fsm"`); used in docs.
    pub name: &'a str,
    /// The file's text.
    pub text: &'a str,
    /// The canonical absolute path, for `include_str!` so that cargo rebuilds when the
    /// file changes; `None` in tests that expand text held in memory.
    pub include_path: Option<&'a str>,
}

/// The items generated for a clean machine.
pub fn expand(model: &Model, source: Source<'_>) -> TokenStream {
    let file = SourceFile::new(source.name, source.text);
    let names = Names::from_model(model);
    let enums = enums::expand(&names, Some(model), &file);
    let traits = traits::expand(&names, Some(model));
    let machine = table::expand(model, &names, &file);
    let graphs = table::graphs(model);
    let rebuild = rebuild(source);
    quote! {
        #enums
        #traits
        #machine
        #graphs
        #rebuild
    }
}

/// Items of the same names as [`expand`] gives, for a file with errors: every name the
/// file declares that can be recovered, and a machine that allows nothing. The caller
/// emits the file's diagnostics as a compile error beside them.
pub fn expand_fallback(file: Option<&ast::File>, source: Source<'_>) -> TokenStream {
    let names = file.map_or_else(Names::default, Names::from_ast);
    let enums = enums::expand(&names, None, &SourceFile::new(source.name, source.text));
    let traits = traits::expand(&names, None);
    let machine = table::expand_empty(&names);
    let rebuild = rebuild(source);
    quote! {
        #enums
        #traits
        #machine
        /// The machine's graph; empty while the file has errors.
        pub const DOT: &str = "";
        /// The machine's graph; empty while the file has errors.
        pub const MERMAID: &str = "";
        #rebuild
    }
}

/// `include_str!` of the file makes it an input of the crate, so editing it rebuilds.
fn rebuild(source: Source<'_>) -> TokenStream {
    match source.include_path {
        Some(path) => quote! {
            const _: &str = ::core::include_str!(#path);
        },
        None => TokenStream::new(),
    }
}
