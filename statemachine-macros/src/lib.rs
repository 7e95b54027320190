//! The `machine!` proc-macro: a thin shell over `statemachine-dsl` that resolves a
//! `.fsm` path against `CARGO_MANIFEST_DIR`, reads, validates and expands it, and never
//! panics. It holds no logic of its own; codegen lives in `statemachine-dsl` so that it
//! can be tested as a library.
//!
//! The macro is the next step of the roadmap in README.md.
