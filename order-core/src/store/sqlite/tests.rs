//! The adapter against real SQLite databases: the fixtures the other test modules share,
//! the schema, and the constraints. Reads are in `tests_reads.rs`, write transactions in
//! `tests_tx.rs`, upgrades of databases holding rows in `tests_migrations.rs`.

use chrono::{DateTime, TimeZone, Utc};

use super::SqliteStore;
use crate::order::{ActorKind, Event, State};
use crate::store::{NewMessage, NewTransition, Store};
use crate::types::{NewOrder, Order};

/// A moment `secs` seconds into 2026.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

/// A migrated in-memory database with two products: `A` (10 in stock, 250 cents) and
/// `B` (3 in stock, 1000 cents).
pub(super) async fn store() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect to memory");
    store.migrate().await.expect("migrate");
    store
        .add_product("A", "Apple", 250, 10)
        .await
        .expect("add A");
    store
        .add_product("B", "Bike", 1000, 3)
        .await
        .expect("add B");
    store
}

pub(super) async fn order(store: &SqliteStore, email: &str, items: &[(&str, i64)]) -> Order {
    store
        .create_order(&NewOrder::new(email, items), State::Pending, at(0))
        .await
        .expect("create order")
}

/// Moves an order to `to` the way the engine does: order row, audit row, outbox row.
pub(super) async fn transition(store: &SqliteStore, order: &Order, to: State, secs: i64) -> Order {
    let mut tx = store.begin().await.expect("begin");
    let current = tx
        .lock_order(order.id)
        .await
        .expect("lock")
        .expect("order exists");
    let seq = tx.last_seq(order.id).await.expect("last seq") + 1;
    let metadata = serde_json::json!({ "test": true });
    tx.append_transition(&NewTransition {
        order: order.id,
        seq,
        event: Event::Confirm,
        from: current.state,
        to,
        actor_kind: ActorKind::System,
        actor_id: None,
        reason: None,
        note: Some("by a test"),
        is_override: false,
        machine_hash: "hash",
        idempotency_key: None,
        metadata: &metadata,
        at: at(secs),
    })
    .await
    .expect("append transition");
    let dedupe = format!("order:{}:{seq}:moved", order.id);
    tx.enqueue(&NewMessage {
        aggregate: order.id,
        kind: "moved",
        payload: &metadata,
        dedupe_key: &dedupe,
        at: at(secs),
    })
    .await
    .expect("enqueue");
    let mut next = current.clone();
    next.state = to;
    assert!(tx.update_order(&next, at(secs)).await.expect("update"));
    tx.commit().await.expect("commit");
    store
        .order(order.id)
        .await
        .expect("read")
        .expect("order exists")
}

fn db_message(err: sqlx::Error) -> String {
    err.as_database_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

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

#[tokio::test]
async fn the_audit_trail_and_the_ledger_are_append_only() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    transition(&store, &order, State::Confirmed, 10).await;

    for sql in [
        "UPDATE order_transitions SET to_state = 'paid'",
        "DELETE FROM order_transitions",
    ] {
        let err = sqlx::query(sql)
            .execute(store.pool())
            .await
            .expect_err("the trigger refuses");
        assert!(
            db_message(err).contains("order_transitions is append-only"),
            "{sql}"
        );
    }
    for sql in [
        "UPDATE inventory_movements SET delta_on_hand = 0",
        "DELETE FROM inventory_movements",
    ] {
        let err = sqlx::query(sql)
            .execute(store.pool())
            .await
            .expect_err("the trigger refuses");
        assert!(
            db_message(err).contains("inventory_movements is append-only"),
            "{sql}"
        );
    }
    assert_eq!(store.history(order.id).await.expect("history").len(), 1);
}

#[tokio::test]
async fn constraints_refuse_impossible_stock_and_gapped_audit_rows() {
    let store = store().await;
    let err = sqlx::query("UPDATE products SET reserved = on_hand + 1 WHERE sku = 'A'")
        .execute(store.pool())
        .await
        .expect_err("the CHECK refuses");
    assert!(db_message(err).contains("CHECK constraint failed"));
    let err = sqlx::query("UPDATE products SET reserved = -1 WHERE sku = 'A'")
        .execute(store.pool())
        .await
        .expect_err("the CHECK refuses");
    assert!(db_message(err).contains("CHECK constraint failed"));

    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let err = sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, actor_kind, \
             is_override, machine_hash, metadata, created_at) \
         VALUES (?, 2, 'confirm', 'pending', 'confirmed', 'system', 0, 'h', 'null', ?)",
    )
    .bind(order.id.0)
    .bind(at(1))
    .execute(store.pool())
    .await
    .expect_err("seq 2 before seq 1 is refused");
    assert!(db_message(err).contains("seq must follow"));
}
