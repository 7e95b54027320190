//! Upgrades of databases that hold rows: a database is migrated up to the migration
//! under test, seeded with rows as the adapter wrote them then, migrated the rest of the
//! way by `Store::migrate`, and its rows, its schema and the schema's rules are checked.
//!
//! Migration 0005's upgrade is tested once for both adapters, in the `tests` crate's
//! `integration/migrations.rs`, because its scenario is the same on both but for what
//! each database's catalogue says; 0003's stays here, as its PostgreSQL counterpart
//! seeds and checks the parcels its own way.

use super::SqliteStore;
use super::tests::at;
use crate::store::Store;
use crate::types::OrderId;

/// Runs the migrations before `version` only: the schema as it was before that one.
async fn migrate_before(store: &SqliteStore, version: i64) {
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before
        .run(store.pool())
        .await
        .unwrap_or_else(|err| panic!("migrate to {:04}: {err}", version - 1));
    let applied: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("applied migrations");
    assert_eq!(applied, version - 1, "the schema stops before {version:04}");
}

/// Rows written under migrations 0001-0002, as the adapter wrote them then: two
/// orders, four parcels in every old state, their lines.
const OLD_SHIPMENTS: &[&str] = &[
    "INSERT INTO customers (id, email, created_at) VALUES (1, 'ann@example.com', '2026-01-01T00:00:00Z')",
    "INSERT INTO products (id, sku, name, price_cents, on_hand, reserved) VALUES (1, 'A', 'Apple', 250, 0, 0)",
    "INSERT INTO orders (id, number, customer_id, state, version, currency, total_cents, \
         payment_status, fulfillment_status, created_at, updated_at) \
     VALUES (1, 'ORD-000001', 1, 'shipped', 3, 'EUR', 1000, 'captured', 'shipped', \
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    "INSERT INTO order_items (id, order_id, line_no, product_id, quantity, unit_price_cents, \
         qty_shipped, qty_returned) VALUES (1, 1, 1, 1, 4, 250, 4, 1)",
    "INSERT INTO shipments (id, order_id, state, carrier, tracking_number, shipped_at, \
         delivered_at) VALUES \
         (1, 1, 'in_transit', 'dhl', 'T-1', '2026-01-02T00:00:00Z', NULL), \
         (2, 1, 'delivered', 'dhl', 'T-2', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'), \
         (3, 1, 'returned', 'ups', NULL, '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'), \
         (4, 1, 'lost', 'ups', NULL, '2026-01-02T00:00:00Z', NULL)",
    "INSERT INTO shipment_items (shipment_id, order_item_id, quantity) \
     VALUES (1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1)",
];

#[tokio::test]
async fn migration_0003_keeps_old_parcels_in_the_new_states() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    // The schema as it was before 0003, with rows in it.
    migrate_before(&store, 3).await;
    for sql in OLD_SHIPMENTS {
        sqlx::query(sql)
            .execute(store.pool())
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
    store.migrate().await.expect("migrate to 0003");

    let parcels = store.shipments(OrderId(1)).await.expect("read");
    let states: Vec<(&str, bool)> = parcels
        .iter()
        .map(|s| (s.state.as_str(), s.delivered_at.is_some()))
        .collect();
    assert_eq!(
        states,
        [
            ("in_transit", false),
            ("delivered", true),
            ("delivered", true),
            ("lost", false)
        ]
    );
    assert!(
        parcels
            .iter()
            .all(|s| s.items == [(crate::types::ItemId(1), 1)])
    );
    assert_eq!(parcels[0].tracking_number.as_deref(), Some("T-1"));

    // Every foreign key holds and points at the tables that exist.
    let broken: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(store.pool())
        .await
        .expect("foreign key check");
    assert_eq!(broken, []);
    let targets: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"table\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name IN ('shipments', 'shipment_items') \
         ORDER BY m.name, f.\"table\"",
    )
    .fetch_all(store.pool())
    .await
    .expect("foreign keys");
    let targets: Vec<(&str, &str)> = targets
        .iter()
        .map(|(t, r)| (t.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("shipment_items", "order_items"),
            ("shipment_items", "shipments"),
            ("shipments", "orders")
        ]
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' \
         AND tbl_name IN ('shipments', 'shipment_items') AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        [
            "shipment_items_item",
            "shipments_order",
            "shipments_tracking"
        ]
    );
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    // The old state is refused now, a new one taken.
    let refused = sqlx::query("UPDATE shipments SET state = 'returned' WHERE id = 1")
        .execute(store.pool())
        .await;
    assert!(refused.is_err(), "`returned` is no longer a shipment state");
    let mut tx = store.begin().await.expect("begin");
    let line = crate::types::ItemId(1);
    tx.set_shipped(line, 2).await.expect("set shipped");
    let id = tx
        .insert_shipment(OrderId(1), "dhl", None, &[(line, 1)], at(5))
        .await
        .expect("ship");
    tx.commit().await.expect("commit");
    let parcels = store.shipments(OrderId(1)).await.expect("read");
    assert_eq!(
        (parcels[4].id, parcels[4].state.as_str()),
        (id, "label_created")
    );
}
