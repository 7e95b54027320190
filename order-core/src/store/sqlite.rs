//! The SQLite adapter: being written.

/// A SQLite database.
#[derive(Debug)]
pub struct SqliteStore;
