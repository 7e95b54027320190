//! The engine suites on SQLite: in memory, or a file where connections share it.

use super::Backend;

const BACKEND: Backend = Backend::Sqlite;

#[path = "concurrency.rs"]
mod concurrency;
#[path = "failures.rs"]
mod failures;
#[path = "faulty.rs"]
mod faulty;
#[path = "harness.rs"]
mod harness;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "model.rs"]
mod model;
#[path = "parcels.rs"]
mod parcels;
#[path = "reconcile.rs"]
mod reconcile;
#[path = "killed.rs"]
mod killed;
#[path = "webhooks.rs"]
mod webhooks;
#[path = "operations.rs"]
mod operations;
#[path = "queries.rs"]
mod queries;
#[path = "table.rs"]
mod table;
#[path = "trail.rs"]
mod trail;
