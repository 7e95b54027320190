//! The upgrade scenarios on PostgreSQL: a new database of the test server (see
//! `tests::postgres`) per test.

use sqlx::PgPool;

use order_core::PostgresStore;

use super::RawSql;

upgrades!(database());

/// A store on a new, empty database, not migrated, with its hook. The database lives on
/// the server, so nothing else has to outlive the store.
async fn database() -> (PostgresStore, RawSql, ()) {
    let url = tests::postgres::database().await;
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to the test database");
    let raw = raw_sql!(
        store.pool(),
        sqlx::migrate!("../order-core/migrations/postgres"),
        schema_after_0005,
        "payments_state_check"
    );
    (store, raw, ())
}

/// 0005 alters `payments` in place and replaces the refunds trigger's function, so the
/// schema around them is checked in the catalogue: the foreign keys, valid, point where
/// they did; the indexes and the triggers are there.
async fn schema_after_0005(pool: PgPool) {
    let targets: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::TEXT, c.confrelid::regclass::TEXT, a.attname::TEXT, \
             c.convalidated \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND c.conrelid IN ('payments'::regclass, 'refunds'::regclass) \
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    let targets: Vec<(&str, &str, &str, bool)> = targets
        .iter()
        .map(|(t, r, c, valid)| (t.as_str(), r.as_str(), c.as_str(), *valid))
        .collect();
    assert_eq!(
        targets,
        [
            ("payments", "orders", "order_id", true),
            ("refunds", "orders", "order_id", true),
            ("refunds", "payments", "payment_id", true)
        ]
    );
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT tablename::TEXT, indexname::TEXT FROM pg_indexes \
         WHERE schemaname = 'public' AND tablename IN ('payments', 'refunds') \
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    let indexes: Vec<(&str, &str)> = indexes
        .iter()
        .map(|(t, i)| (t.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        indexes,
        [
            ("payments", "payments_idempotency_key_key"),
            ("payments", "payments_order_id_attempt_no_key"),
            ("payments", "payments_pkey"),
            ("payments", "payments_processor_ref"),
            ("refunds", "refunds_idempotency_key_key"),
            ("refunds", "refunds_order"),
            ("refunds", "refunds_payment"),
            ("refunds", "refunds_pkey"),
        ]
    );
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.tgrelid::regclass::TEXT, t.tgname::TEXT, p.proname::TEXT \
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
         WHERE t.tgrelid IN ('payments'::regclass, 'refunds'::regclass) \
           AND NOT t.tgisinternal \
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("triggers");
    let triggers: Vec<(&str, &str, &str)> = triggers
        .iter()
        .map(|(t, n, f)| (t.as_str(), n.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        triggers,
        [
            (
                "refunds",
                "refunds_within_captured_insert",
                "refunds_within_captured"
            ),
            (
                "refunds",
                "refunds_within_captured_update",
                "refunds_within_captured"
            ),
        ]
    );
}
