//! The integration tests, one binary with a module per area.

mod cli;
mod diagnostics;
mod docs;
mod format;
mod graphs;
mod parser_props;
