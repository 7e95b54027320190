//! The `machine!` proc-macro: a thin shell over `statemachine-dsl`.
//!
//! It resolves the path against `CARGO_MANIFEST_DIR`, reads the file, validates and
//! expands it. Codegen lives in `statemachine-dsl` so that it can be tested as a
//! library; use the macro through `statemachine::machine!`, whose documentation says
//! what it generates.
//!
//! **Invariant:** the macro never panics. Every problem (a non-literal argument, an
//! absolute or unreadable path, a broken `.fsm` file) becomes one compile error spanned
//! on the argument, followed by fallback items so that nothing else cascades.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use statemachine_dsl::expand::Source;
use statemachine_dsl::{Severity, SourceFile};

/// Compiles a `.fsm` file into Rust items in the calling module.
///
/// ```text
/// pub mod order {
///     statemachine::machine!("../machines/order.fsm");
/// }
/// ```
///
/// The path is relative to the invoking crate's `Cargo.toml` (`CARGO_MANIFEST_DIR`), as
/// `include_str!` paths are relative to the source file; an absolute path is refused so
/// the crate builds on other machines. Cargo rebuilds the crate when the file changes.
///
/// # Generated items
///
/// - `State`, `Event`, `ActorKind`, `Reason`, `Guard`, `Action`, `Notification` and
///   `Operation` enums: one variant per name of the file (`return_to_sender` becomes
///   `ReturnToSender`), `Copy`, `Eq`, `Hash`, `Ord` (file order), `Debug`, serde,
///   `Display` and `FromStr` with the `.fsm` spelling (unknown text is an
///   [`UnknownName`](../statemachine/struct.UnknownName.html) error), an `ALL` array
///   and `as_str`; each implements `statemachine::Name`.
/// - `State::is_initial`, `State::is_terminal`, `State::allows(Operation)` (the
///   `allow` rules), and `ActorKind::class` (owner, staff or service).
/// - `trait Guards`: one async method per guard name, taking `&mut Self::Context`
///   and returning `Result<bool, Self::Error>`, plus `check` (dispatch by `Guard`) and
///   `evaluate` (a whole `when` expression, short-circuiting in declared order).
/// - `trait Actions`: one async method per action and undo action (hooks included),
///   returning `Result<(), Self::Error>`, plus `run` (dispatch by `Action`).
/// - `struct Machine`, implementing `statemachine::Machine`: the static transition
///   table, `candidates(State, Event)`, `available_events(State, ActorKind)`, enter
///   and exit hooks, calendars, the machine's name and the SHA-256 of its source.
/// - `DOT` and `MERMAID`: the graphs that `fsm graph` prints.
///
/// # Errors
///
/// A file with errors fails the build with one error on the path literal, whose
/// message holds every diagnostic as `fsm check` renders it
/// (`order.fsm:42:9: error[FSM007]: ...` with the snippet). The items above are still
/// generated, from the names the file declares, so that code using them does not add
/// errors of its own. A missing file, an absolute path or an argument that is not
/// exactly one string literal is an error at the argument.
///
/// Warnings of a clean file (declarations never used, say) are reported as
/// deprecation warnings on the path literal, so that `cargo build` shows them too.
#[proc_macro]
pub fn machine(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match syn::parse::Parser::parse(one_literal, input) {
        Ok(literal) => expand(&literal).into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Exactly one string literal, and nothing after it.
fn one_literal(input: syn::parse::ParseStream<'_>) -> syn::Result<syn::LitStr> {
    const EXPECTED: &str =
        "expected the path of a `.fsm` file as one string literal, like `machine!(\"order.fsm\")`";
    let literal: syn::LitStr = input
        .parse()
        .map_err(|err| syn::Error::new(err.span(), EXPECTED))?;
    if !input.is_empty() {
        return Err(syn::Error::new(input.span(), EXPECTED));
    }
    Ok(literal)
}

fn expand(literal: &syn::LitStr) -> TokenStream {
    let written = literal.value();
    let span = literal.span();
    let fallback = |message: String, source: Source<'_>| {
        let (file, _) = statemachine_dsl::parse_partial(source.text);
        let mut out = syn::Error::new(span, message).to_compile_error();
        out.extend(statemachine_dsl::expand_fallback(file.as_ref(), source));
        out
    };
    let empty = Source {
        name: &written,
        text: "",
        include_path: None,
    };
    let path = match resolve(&written) {
        Ok(path) => path,
        Err(message) => return fallback(message, empty),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => return fallback(cannot_read(&written, &err), empty),
    };
    // The canonical path is what cargo sees as an input of the crate.
    let include_path = path.to_string_lossy().into_owned();
    let source = Source {
        name: &written,
        text: &text,
        include_path: Some(&include_path),
    };
    let checked = statemachine_dsl::check(&text);
    match checked.model {
        Some(model) => {
            let mut out = statemachine_dsl::expand(&model, source);
            let file = SourceFile::new(&written, &text);
            out.extend(
                checked
                    .diagnostics
                    .iter()
                    .map(|d| warning(&file.render(d), span)),
            );
            out
        }
        None => {
            let file = SourceFile::new(&written, &text);
            let rendered: Vec<String> = checked
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| file.render(d))
                .collect();
            fallback(rendered.join("\n"), source)
        }
    }
}

/// A warning on the path literal: the use of a deprecated item whose note is the
/// rendered diagnostic. Stable Rust has no other way for a macro to warn.
fn warning(rendered: &str, span: proc_macro2::Span) -> TokenStream {
    let use_it = quote::quote_spanned!(span=> let _ = FsmWarning;);
    quote::quote! {
        const _: () = {
            #[deprecated(note = #rendered)]
            struct FsmWarning;
            #use_it
        };
    }
}

/// The file's canonical path: relative to the invoking crate's `CARGO_MANIFEST_DIR`.
fn resolve(written: &str) -> Result<PathBuf, String> {
    if Path::new(written).is_absolute() {
        return Err(format!(
            "`{written}` is an absolute path; give the path relative to the crate's Cargo.toml so the crate builds on other machines"
        ));
    }
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .ok_or("CARGO_MANIFEST_DIR is not set; build the crate with cargo")?;
    let path = Path::new(&root).join(written);
    path.canonicalize()
        .map_err(|err| cannot_read(written, &err))
}

/// The message for a file that cannot be read. It names the path as written, not the
/// absolute path looked up, so that the message is the same on every machine (and in
/// the expected output of the compile-fail tests, whatever the target dir).
fn cannot_read(written: &str, err: &std::io::Error) -> String {
    format!("cannot read `{written}`, relative to the folder of this crate's Cargo.toml: {err}")
}
