//! The order engine: the machine's rules enforced through the whole pipeline, on both
//! databases. The suites are compiled twice from the same files, once per backend
//! (`sqlite.rs`, `postgres.rs`); the harness (`Shop`) gives each copy its backend's
//! stores. The `Store` conformance suite instantiates itself per adapter, and the query
//! plans are SQLite's own.

mod conformance;
// The same files, compiled once per backend on purpose.
#[allow(clippy::duplicate_mod)]
mod postgres;
mod sqlite;

/// Which database a copy of the engine's suites runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}
