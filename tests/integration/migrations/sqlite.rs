//! The upgrade scenarios on SQLite, on a database file in a temporary folder: upgrades
//! meet files, not memory databases, in practice.

use sqlx::SqlitePool;
use tempfile::TempDir;

use order_core::SqliteStore;

use super::RawSql;

upgrades!(database());

/// A store on a new, empty database file, not migrated, with its hook; the folder goes
/// when the test drops it.
async fn database() -> (SqliteStore, RawSql, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    let raw = raw_sql!(
        store.pool(),
        sqlx::migrate!("../order-core/migrations/sqlite"),
        schema_after_0005,
        "CHECK constraint failed"
    );
    (store, raw, dir)
}

/// 0005 rebuilds `payments` and `refunds` through copies, so the rebuilt tables are
/// checked: foreign keys hold and point at the tables that exist, the indexes and
/// triggers are back, nothing is left of the copies, and the file is sound.
async fn schema_after_0005(pool: SqlitePool) {
    let broken: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .expect("foreign key check");
    assert_eq!(broken, []);
    let targets: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"table\", f.\"from\" \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name IN ('payments', 'refunds') \
         ORDER BY m.name, f.\"table\"",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    let targets: Vec<(&str, &str, &str)> = targets
        .iter()
        .map(|(t, r, c)| (t.as_str(), r.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("payments", "orders", "order_id"),
            ("refunds", "orders", "order_id"),
            ("refunds", "payments", "payment_id")
        ]
    );
    let schema: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT type, name, tbl_name FROM sqlite_master \
         WHERE type IN ('index', 'trigger') AND tbl_name IN ('payments', 'refunds') \
           AND name NOT LIKE 'sqlite_%' \
         ORDER BY type, name",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes and triggers");
    let schema: Vec<(&str, &str, &str)> = schema
        .iter()
        .map(|(k, n, t)| (k.as_str(), n.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        schema,
        [
            ("index", "payments_processor_ref", "payments"),
            ("index", "refunds_order", "refunds"),
            ("index", "refunds_payment", "refunds"),
            ("trigger", "refunds_within_captured_insert", "refunds"),
            ("trigger", "refunds_within_captured_update", "refunds"),
        ]
    );
    let leftovers: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE name LIKE '%0005%' OR sql LIKE '%0005%'",
    )
    .fetch_all(&pool)
    .await
    .expect("leftovers");
    assert_eq!(leftovers, Vec::<String>::new());
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity check");
    assert_eq!(integrity, "ok");
}
