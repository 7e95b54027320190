//! The runtime facade that code generated from `.fsm` files refers to.
//!
//! Generated code names only `::statemachine::...` paths, so a crate that depends on
//! `statemachine` can compile any machine. This crate will hold the `Machine` trait,
//! transition specs, guard expressions, actor and reason types and errors, and
//! re-export the `machine!` macro of `statemachine-macros`, as `serde` re-exports
//! `serde_derive`. It stays small and dependency-light.
//!
//! Today the language itself is in place (`statemachine-dsl` and its `fsm` tool); the
//! runtime types and the macro are the next step of the roadmap in README.md.
