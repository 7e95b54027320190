//! The order domain and its transition engine: guards and actions of the order
//! machine, the transition pipeline, storage adapters for SQLite and PostgreSQL,
//! migrations, queries, bulk operations, the outbox and the audit trail.
//!
//! It depends on the order machine only through the `machine!` macro, never on
//! `statemachine-dsl` at run time. The engine follows the macro on the roadmap in
//! README.md.
