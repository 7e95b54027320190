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
#[path = "killed.rs"]
mod killed;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "model.rs"]
mod model;
#[path = "operations.rs"]
mod operations;
#[path = "parcels.rs"]
mod parcels;
#[path = "payments.rs"]
mod payments;
#[path = "queries.rs"]
mod queries;
#[path = "reconcile.rs"]
mod reconcile;
#[path = "table.rs"]
mod table;
#[path = "trail.rs"]
mod trail;
#[path = "webhooks.rs"]
mod webhooks;
