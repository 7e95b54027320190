//! PostgreSQL's schema: its types and indexes, an upgrade of a database holding rows,
//! the append-only guards as statement triggers, the order sequence, and timestamps.

use order_core::order::State;
use order_core::{NewOrder, PostgresStore, Store, StoreError};

use super::{at, confirm_row, connect, db_message, exec, order, store};

/// Stores migrating one new database at once take turns, into PostgreSQL's own types.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrates_twice_and_concurrently_into_postgres_types() {
    let url = tests::postgres::database().await;
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(PostgresStore::connect(&url).await.expect("connect"));
    }
    // sqlx's advisory lock makes processes migrating one new database take turns.
    let tasks: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for task in tasks {
        task.await.expect("task").expect("every migration succeeds");
    }
    let store = &stores[0];
    store
        .migrate()
        .await
        .expect("migrating again changes nothing");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
           AND table_name NOT LIKE '\\_%' ORDER BY table_name",
    )
    .fetch_all(store.pool())
    .await
    .expect("list tables");
    assert_eq!(tables.len(), 17, "{tables:?}");

    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name || '.' || column_name, data_type::TEXT \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND (table_name, column_name) IN ( \
             ('orders', 'id'), ('orders', 'created_at'), ('order_transitions', 'metadata'), \
             ('order_transitions', 'is_override'), ('outbox', 'payload'), \
             ('payments', 'fraud_review')) \
         ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("column types");
    assert_eq!(
        types
            .iter()
            .map(|(c, t)| (c.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
        [
            ("order_transitions.is_override", "boolean"),
            ("order_transitions.metadata", "jsonb"),
            ("orders.created_at", "timestamp with time zone"),
            ("orders.id", "bigint"),
            ("outbox.payload", "jsonb"),
            ("payments.fraud_review", "boolean"),
        ]
    );

    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes \
         WHERE tablename = 'orders' AND indexname IN \
             ('orders_state_updated', 'orders_customer_created') ORDER BY indexname",
    )
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    assert_eq!(indexes.len(), 2);
    assert!(
        indexes[0].ends_with("(customer_id, created_at)"),
        "{indexes:?}"
    );
    assert!(indexes[1].ends_with("(state, updated_at)"), "{indexes:?}");
}

/// Migration 0003 moves parcels of a database holding rows into the new shipment states.
#[tokio::test]
async fn migration_0003_keeps_old_parcels_in_the_new_states() {
    let store = connect().await;
    // The schema as it was before 0003, with rows in it.
    let mut before = sqlx::migrate!("../order-core/migrations/postgres");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 3)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(store.pool()).await.expect("migrate to 0002");
    store
        .add_product("A", "Apple", 250, 10)
        .await
        .expect("add A");
    let order = order(&store, "ann@example.com", &[("A", 4)]).await;
    let line = store.items(order.id).await.expect("items")[0].id;
    for sql in [
        format!("UPDATE order_items SET qty_shipped = 4, qty_returned = 1 WHERE id = {line}"),
        format!(
            "INSERT INTO shipments (order_id, state, carrier, tracking_number, shipped_at, \
                 delivered_at) VALUES \
                 ({o}, 'in_transit', 'dhl', 'T-1', '2026-01-02T00:00:00Z', NULL), \
                 ({o}, 'delivered', 'dhl', 'T-2', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'), \
                 ({o}, 'returned', 'ups', NULL, '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'), \
                 ({o}, 'lost', 'ups', NULL, '2026-01-02T00:00:00Z', NULL)",
            o = order.id
        ),
        format!(
            "INSERT INTO shipment_items (shipment_id, order_item_id, quantity) \
             SELECT id, {line}, 1 FROM shipments"
        ),
    ] {
        exec(&store, &sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
    store.migrate().await.expect("migrate to 0003");

    let parcels = store.shipments(order.id).await.expect("read");
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
    assert!(parcels.iter().all(|s| s.items == [(line, 1)]));
    let err = exec(&store, "UPDATE shipments SET state = 'returned'")
        .await
        .expect_err("`returned` is no longer a shipment state");
    assert!(db_message(err).contains("shipments_state_check"));
    let mut tx = store.begin().await.expect("begin");
    let id = tx.insert_shipment(order.id, "dhl", None, &[], at(5)).await;
    assert!(matches!(id, Err(StoreError::Invalid(_))));
    tx.set_shipped(line, 2).await.expect("set shipped");
    let id = tx
        .insert_shipment(order.id, "dhl", None, &[(line, 1)], at(5))
        .await
        .expect("ship");
    tx.commit().await.expect("commit");
    let parcels = store.shipments(order.id).await.expect("read");
    assert_eq!(
        (parcels[4].id, parcels[4].state.as_str()),
        (id, "label_created")
    );
    assert_eq!(store.verify().await.expect("verify"), []);
}

/// The append-only guards refuse TRUNCATE, and statements that match no row.
#[tokio::test]
async fn append_only_tables_refuse_truncate_and_statements_that_match_nothing() {
    // The guards are statement triggers; SQLite's row triggers see neither.
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let mut tx = store.begin().await.expect("begin");
    tx.append_transition(&confirm_row(order.id, 1, 10))
        .await
        .expect("append");
    let mut confirmed = order.clone();
    confirmed.state = State::Confirmed;
    assert!(tx.update_order(&confirmed, at(10)).await.expect("update"));
    tx.commit().await.expect("commit");

    // No parcel exists: the statements on `entity_transitions` match no row at all.
    for (table, statements) in [
        (
            "order_transitions",
            &[
                "TRUNCATE order_transitions",
                "DELETE FROM order_transitions WHERE id < 0",
            ][..],
        ),
        (
            "inventory_movements",
            &[
                "TRUNCATE inventory_movements",
                "UPDATE inventory_movements SET kind = kind WHERE id < 0",
            ],
        ),
        (
            "entity_transitions",
            &[
                "TRUNCATE entity_transitions",
                "UPDATE entity_transitions SET to_state = 'lost'",
                "DELETE FROM entity_transitions",
                "DELETE FROM entity_transitions WHERE id < 0",
            ],
        ),
    ] {
        for &sql in statements {
            let err = exec(&store, sql).await.expect_err("the trigger refuses");
            assert!(
                db_message(err).contains(&format!("{table} is append-only")),
                "{sql}"
            );
        }
    }
    assert_eq!(store.history(order.id).await.expect("history").len(), 1);
    assert_eq!(store.verify().await.expect("verify"), []);
}

/// Order numbers come from the id sequence and keep every digit past a million.
#[tokio::test]
async fn order_numbers_past_a_million_keep_every_digit() {
    let store = store().await;
    sqlx::query("SELECT setval(pg_get_serial_sequence('orders', 'id'), 1234566)")
        .execute(store.pool())
        .await
        .expect("move the sequence");
    assert_eq!(
        order(&store, "ann@example.com", &[("A", 1)]).await.number,
        "ORD-1234567"
    );
}

/// The state index serves the list query of a state set and an updated range.
#[tokio::test]
async fn the_state_index_serves_a_state_set_and_an_updated_range() {
    let store = store().await;
    // The shape of the adapter's list query; with sequential scans priced out (the
    // table is tiny), the planner shows which index can serve it.
    let mut conn = store.pool().acquire().await.expect("a connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.state = ANY($1) AND o.updated_at >= $2 AND o.updated_at < $3 \
         ORDER BY o.id LIMIT 50",
    )
    .bind(vec!["paid", "processing"])
    .bind(at(0))
    .bind(at(10))
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    assert!(
        plan.iter()
            .any(|line| line.contains("orders_state_updated")),
        "{plan:#?}"
    );
}

/// Timestamps keep microseconds: nanoseconds read back truncated.
#[tokio::test]
async fn timestamps_keep_microseconds() {
    let store = store().await;
    let precise = at(0) + chrono::Duration::nanoseconds(1_234_567);
    let order = store
        .create_order(
            &NewOrder::new("ann@example.com", &[("A", 1)]),
            State::Pending,
            precise,
        )
        .await
        .expect("create");
    assert_eq!(
        order.created_at,
        at(0) + chrono::Duration::microseconds(1_234),
        "PostgreSQL keeps microseconds"
    );
}
