//! The integration tests, one binary with a module per area.

mod cli;
mod diagnostics;
mod docs;
mod engine;
mod format;
mod generated;
mod graphs;
mod macro_errors;
mod migrations;
mod orderctl;
mod parser_props;
mod postgres;
mod rebuild;
