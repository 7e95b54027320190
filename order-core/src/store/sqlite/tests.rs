//! What is SQLite's own, against real SQLite databases: the fixtures the other test
//! modules share, and the schema in a memory database and a file. What every adapter
//! does (constraints, triggers, reads, writes) is the `Store` conformance suite's, in
//! `tests/integration/engine/conformance`, run on SQLite and PostgreSQL alike. Query plans
//! are in `tests_reads.rs`, writers under `BEGIN IMMEDIATE` in `tests_tx.rs`, upgrades of
//! databases holding rows in `tests_migrations.rs`.

use chrono::{DateTime, TimeZone, Utc};

use super::SqliteStore;
use crate::order::State;
use crate::store::Store;
use crate::types::{NewOrder, Order};

/// A moment `secs` seconds into 2026.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

/// A migrated in-memory database, empty.
pub(super) async fn store() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect to memory");
    store.migrate().await.expect("migrate");
    store
}

pub(super) async fn order(store: &SqliteStore, email: &str, items: &[(&str, i64)]) -> Order {
    store
        .create_order(&NewOrder::new(email, items), State::Pending, at(0))
        .await
        .expect("create order")
}

/// A memory database and a file both migrate, the file in WAL mode with foreign keys on.
#[tokio::test]
async fn migrates_a_memory_database_and_a_file() {
    let memory = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect to memory");
    memory.migrate().await.expect("migrate memory");
    memory
        .migrate()
        .await
        .expect("migrating twice changes nothing");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'",
    )
    .fetch_one(memory.pool())
    .await
    .expect("count tables");
    assert_eq!(tables, 17);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested-name.db");
    let url = format!("sqlite://{}", path.display());
    let file = SqliteStore::connect(&url).await.expect("connect to file");
    file.migrate().await.expect("migrate file");
    assert!(path.exists(), "the file is created");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(file.pool())
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(file.pool())
        .await
        .expect("foreign keys");
    assert_eq!(foreign_keys, 1);
    file.add_product("A", "Apple", 250, 10).await.expect("add");
    drop(file);

    // A second store on the same file sees the data.
    let again = SqliteStore::connect(&url).await.expect("reconnect");
    again.migrate().await.expect("migrate again");
    let product = again.product("A").await.expect("read").expect("stored");
    assert_eq!((product.on_hand, product.reserved), (10, 0));
}

/// Stores migrating one new file at once take turns, and every migration succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_migrating_one_new_file_at_once_take_turns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(SqliteStore::connect(&url).await.expect("connect"));
    }
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for task in tasks {
        task.await.expect("task").expect("every migration succeeds");
    }
}
