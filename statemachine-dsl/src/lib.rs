//! The `.fsm` state machine language: parse, validate, render diagnostics, export
//! graphs, format, and expand into Rust for the `machine!` macro.
//!
//! The pipeline reads like the data flow:
//!
//! ```
//! use statemachine_dsl::{check, to_dot};
//!
//! let source = r#"
//!     machine Door {
//!         state shut initial
//!         state open
//!         state broken terminal
//!         actor user
//!         on open: shut -> open { by user }
//!         on close: open -> shut { by user }
//!         on kick: open, shut -> broken { by user }
//!     }
//! "#;
//! let checked = check(source);
//! assert!(checked.diagnostics.is_empty());
//! let model = checked.model.expect("a clean file has a model");
//! assert!(to_dot(&model).starts_with("digraph Door {"));
//! ```
//!
//! **Invariant:** this library reads no files and prints nothing; it takes text and
//! returns a model or diagnostics. Nothing in it panics on any input.

pub mod ast;
pub mod diagnostic;
pub mod expand;
pub mod format;
pub mod graph;
pub mod model;
mod parse;
pub mod render;
mod syntax_error;
mod validate;

pub use diagnostic::{Code, Diagnostic, Label, Severity};
pub use expand::{expand, expand_fallback};
pub use format::format;
pub use graph::{to_dot, to_mermaid};
pub use model::Model;
pub use parse::{parse, parse_partial};
pub use render::SourceFile;
pub use validate::{Validated, validate};

/// Parses and validates a file: the model when it has no error, and every diagnostic
/// (syntax errors, or else every check's errors and warnings) in source order.
pub fn check(source: &str) -> Validated {
    match parse(source) {
        Ok(file) => validate(&file),
        Err(diagnostics) => Validated {
            model: None,
            diagnostics,
        },
    }
}
