//! The PostgreSQL adapter against a real server (see `tests::postgres` for where it
//! comes from): schema, constraints and triggers, reads, queries and `verify`. Its
//! write transactions, locks and concurrency are in `postgres/tx.rs`.
//!
//! Each test gets a database of its own.

mod tx;

use chrono::{DateTime, TimeZone, Utc};
use order_core::order::{ActorKind, Event, State};
use order_core::store::{NewMessage, NewTransition};
use order_core::{
    Attempt, FulfillmentStatus, NewOrder, Order, OrderId, OrderQuery, PaymentStatus, PostgresStore,
    ProductId, Store, StoreError,
};

/// A moment `secs` seconds into 2026.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

/// A store on a new database, not migrated.
async fn connect() -> PostgresStore {
    let url = tests::postgres::database().await;
    PostgresStore::connect(&url)
        .await
        .expect("connect to the test database")
}

/// A migrated database with two products: `A` (10 in stock, 250 cents) and `B` (3 in
/// stock, 1000 cents).
async fn store() -> PostgresStore {
    let store = connect().await;
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

async fn order(store: &PostgresStore, email: &str, items: &[(&str, i64)]) -> Order {
    store
        .create_order(&NewOrder::new(email, items), State::Pending, at(0))
        .await
        .expect("create order")
}

/// Moves an order to `to` the way the engine does: order row, audit row, outbox row.
async fn transition(store: &PostgresStore, order: &Order, to: State, secs: i64) -> Order {
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

/// The database's own words for a refused statement.
fn db_message(err: sqlx::Error) -> String {
    err.as_database_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

async fn exec(store: &PostgresStore, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .map(|done| done.rows_affected())
}

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

#[tokio::test]
async fn the_audit_trail_and_the_ledger_are_append_only() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    transition(&store, &order, State::Confirmed, 10).await;

    for (table, statements) in [
        (
            "order_transitions",
            [
                "UPDATE order_transitions SET to_state = 'paid'",
                "DELETE FROM order_transitions",
                "TRUNCATE order_transitions",
                // Refused whatever it matches, even nothing.
                "DELETE FROM order_transitions WHERE id < 0",
            ],
        ),
        (
            "inventory_movements",
            [
                "UPDATE inventory_movements SET delta_on_hand = 0",
                "DELETE FROM inventory_movements",
                "TRUNCATE inventory_movements",
                "UPDATE inventory_movements SET kind = kind WHERE id < 0",
            ],
        ),
        (
            "entity_transitions",
            [
                "UPDATE entity_transitions SET to_state = 'lost'",
                "DELETE FROM entity_transitions",
                "TRUNCATE entity_transitions",
                "DELETE FROM entity_transitions WHERE id < 0",
            ],
        ),
    ] {
        for sql in statements {
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

#[tokio::test]
async fn constraints_refuse_impossible_stock_gapped_audit_rows_and_refunds() {
    let store = store().await;
    for sql in [
        "UPDATE products SET reserved = on_hand + 1 WHERE sku = 'A'",
        "UPDATE products SET reserved = -1 WHERE sku = 'A'",
        "INSERT INTO inventory_movements (product_id, kind, delta_on_hand, delta_reserved, \
             created_at) VALUES (1, 'reserve', 1, 1, now())",
    ] {
        let err = exec(&store, sql).await.expect_err("the CHECK refuses");
        assert!(
            db_message(err).contains("violates check constraint"),
            "{sql}"
        );
    }

    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let err = sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, actor_kind, \
             is_override, machine_hash, created_at) \
         VALUES ($1, 2, 'confirm', 'pending', 'confirmed', 'system', FALSE, 'h', $2)",
    )
    .bind(order.id.0)
    .bind(at(1))
    .execute(store.pool())
    .await
    .expect_err("seq 2 before seq 1 is refused");
    assert!(db_message(err).contains("seq must follow"));

    // Only captured money can be refunded, and never more than was captured.
    let payment: i64 = sqlx::query_scalar(
        "INSERT INTO payments (order_id, attempt_no, state, amount_cents, idempotency_key, \
             created_at, updated_at) \
         VALUES ($1, 1, 'authorized', 500, 'p1', now(), now()) RETURNING id",
    )
    .bind(order.id.0)
    .fetch_one(store.pool())
    .await
    .expect("a payment");
    let refund = |amount: i64, key: &'static str| {
        sqlx::query(
            "INSERT INTO refunds (order_id, payment_id, amount_cents, state, idempotency_key, \
                 created_at) \
             VALUES ($1, $2, $3, 'succeeded', $4, now())",
        )
        .bind(order.id.0)
        .bind(payment)
        .bind(amount)
        .bind(key)
        .execute(store.pool())
    };
    let err = refund(100, "r0")
        .await
        .expect_err("an authorized payment cannot be refunded");
    assert!(db_message(err).contains("refunds exceed the captured amount"));
    exec(&store, "UPDATE payments SET state = 'captured'")
        .await
        .expect("capture");
    refund(300, "r1").await.expect("within the capture");
    let err = refund(201, "r2").await.expect_err("beyond the capture");
    assert!(db_message(err).contains("refunds exceed the captured amount"));
    refund(200, "r3").await.expect("exactly the rest");
    // Turning a failed refund into a succeeded one is checked too.
    sqlx::query(
        "INSERT INTO refunds (order_id, payment_id, amount_cents, state, idempotency_key, \
             created_at) VALUES ($1, $2, 1, 'failed', 'r4', now())",
    )
    .bind(order.id.0)
    .bind(payment)
    .execute(store.pool())
    .await
    .expect("a failed refund does not count");
    let err = exec(
        &store,
        "UPDATE refunds SET state = 'succeeded' WHERE idempotency_key = 'r4'",
    )
    .await
    .expect_err("beyond the capture");
    assert!(db_message(err).contains("refunds exceed the captured amount"));
}

#[tokio::test]
async fn catalog_people_and_new_orders() {
    let store = store().await;
    for (sku, price, stock) in [("A", 1, 1), ("C", -1, 1), ("C", 1, -1)] {
        assert!(matches!(
            store.add_product(sku, "Again", price, stock).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let skus: Vec<String> = store
        .products()
        .await
        .expect("products")
        .into_iter()
        .map(|p| p.sku)
        .collect();
    assert_eq!(skus, ["A", "B"]);
    assert_eq!(store.product("Z").await.expect("read"), None);

    store
        .add_staff("sam", ActorKind::Support)
        .await
        .expect("add sam");
    store
        .add_staff("sam", ActorKind::Admin)
        .await
        .expect("promote sam");
    let sam = store.staff("sam").await.expect("read").expect("stored");
    assert_eq!(sam.role, ActorKind::Admin);
    assert!(matches!(
        store.add_staff("cat", ActorKind::Carrier).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.staff("nobody").await.expect("read"), None);

    let mut new = NewOrder::new("ann@example.com", &[("A", 2), ("B", 1)]);
    new.shipping_address = Some("1 Main St".to_owned());
    let first = store
        .create_order(&new, State::Pending, at(5))
        .await
        .expect("create");
    assert_eq!(first.number, "ORD-000001");
    assert_eq!(first.customer_email, "ann@example.com");
    assert_eq!(first.state, State::Pending);
    assert_eq!(first.version, 0);
    assert_eq!(first.total_cents, 2 * 250 + 1000);
    assert_eq!(first.payment_status, PaymentStatus::None);
    assert_eq!(first.fulfillment_status, FulfillmentStatus::Unfulfilled);
    assert_eq!(first.shipping_address.as_deref(), Some("1 Main St"));
    assert_eq!(first.created_at, at(5));
    let items = store.items(first.id).await.expect("items");
    let lines: Vec<(i64, &str, i64, i64)> = items
        .iter()
        .map(|i| (i.line_no, i.sku.as_str(), i.quantity, i.unit_price_cents))
        .collect();
    assert_eq!(lines, [(1, "A", 2, 250), (2, "B", 1, 1000)]);

    let second = order(&store, "ann@example.com", &[("A", 1)]).await;
    assert_eq!(
        second.customer, first.customer,
        "the customer is found again"
    );
    assert_eq!(second.number, "ORD-000002");

    for (items, expected) in [
        (vec![("Z", 1)], "unknown product `Z`"),
        (vec![("A", 0)], "must be positive"),
        (vec![], "at least one line"),
    ] {
        let err = store
            .create_order(
                &NewOrder::new("bob@example.com", &items),
                State::Pending,
                at(0),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(expected)),
            "{err}"
        );
    }
    // Nothing of a refused order stays, not even its new customer.
    let customers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(customers, 1);
    // Numbers past a million keep every digit.
    sqlx::query("SELECT setval(pg_get_serial_sequence('orders', 'id'), 1234566)")
        .execute(store.pool())
        .await
        .expect("move the sequence");
    assert_eq!(
        order(&store, "ann@example.com", &[("A", 1)]).await.number,
        "ORD-1234567"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_orders_of_one_customer_all_succeed() {
    let store = store().await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_order(
                        &NewOrder::new("new@example.com", &[("A", 1)]),
                        State::Pending,
                        at(0),
                    )
                    .await
            })
        })
        .collect();
    let mut customers = Vec::new();
    for task in tasks {
        customers.push(task.await.expect("task").expect("created").customer);
    }
    customers.dedup();
    assert_eq!(customers.len(), 1, "one customer: {customers:?}");
    let orders = store.list(&OrderQuery::new()).await.expect("list");
    assert_eq!(orders.len(), 16);
}

#[tokio::test]
async fn queries_combine_every_filter() {
    let store = store().await;
    let a1 = order(&store, "ann@example.com", &[("A", 1)]).await;
    let a2 = order(&store, "ann@example.com", &[("A", 1)]).await;
    let b1 = order(&store, "bob@example.com", &[("B", 1)]).await;
    let b2 = order(&store, "bob@example.com", &[("A", 1)]).await;
    transition(&store, &a2, State::Confirmed, 100).await;
    transition(&store, &b1, State::Confirmed, 200).await;
    let b1 = transition(&store, &b1, State::Cancelled, 300).await;

    let ids = |orders: Vec<Order>| orders.into_iter().map(|o| o.id).collect::<Vec<OrderId>>();
    let list = |q: OrderQuery| {
        let store = store.clone();
        async move { ids(store.list(&q).await.expect("list")) }
    };
    assert_eq!(list(OrderQuery::new()).await, [a1.id, a2.id, b1.id, b2.id]);
    assert_eq!(
        list(OrderQuery::new().in_states(&[State::Pending])).await,
        [a1.id, b2.id]
    );
    assert_eq!(
        list(OrderQuery::new().in_states(&[State::Confirmed, State::Cancelled])).await,
        [a2.id, b1.id]
    );
    assert_eq!(
        list(OrderQuery::new().not_in_states(&[State::Pending])).await,
        [a2.id, b1.id]
    );
    assert_eq!(
        list(OrderQuery::new().not_in_states(&[State::Pending, State::Cancelled])).await,
        [a2.id]
    );
    assert_eq!(
        list(OrderQuery::new().customer("bob@example.com")).await,
        [b1.id, b2.id]
    );
    assert!(
        list(OrderQuery::new().customer("nobody@example.com"))
            .await
            .is_empty()
    );
    // Ranges include their start and exclude their end.
    assert_eq!(
        list(OrderQuery::new().updated_between(at(100), at(300))).await,
        [a2.id]
    );
    assert_eq!(
        list(OrderQuery::new().updated_between(at(100), at(301))).await,
        [a2.id, b1.id]
    );
    assert_eq!(
        list(OrderQuery::new().created_between(at(0), at(1)))
            .await
            .len(),
        4
    );
    assert!(
        list(OrderQuery::new().created_between(at(1), at(2)))
            .await
            .is_empty()
    );
    assert_eq!(
        list(OrderQuery::new().payment_status(PaymentStatus::None))
            .await
            .len(),
        4
    );
    assert!(
        list(OrderQuery::new().fulfillment_status(FulfillmentStatus::Shipped))
            .await
            .is_empty()
    );
    assert_eq!(list(OrderQuery::new().after(a2.id).limit(1)).await, [b1.id]);
    assert!(list(OrderQuery::new().limit(0)).await.is_empty());
    assert_eq!(
        list(
            OrderQuery::new()
                .customer("ann@example.com")
                .not_in_states(&[State::Confirmed])
                .after(OrderId(0))
        )
        .await,
        [a1.id]
    );
    // Every filter at once.
    assert_eq!(
        list(
            OrderQuery::new()
                .in_states(&[State::Cancelled, State::Pending])
                .not_in_states(&[State::Pending])
                .customer("bob@example.com")
                .created_between(at(0), at(1))
                .updated_between(at(300), at(301))
                .payment_status(PaymentStatus::None)
                .fulfillment_status(FulfillmentStatus::Unfulfilled)
                .after(a2.id)
                .limit(5)
        )
        .await,
        [b1.id]
    );
    assert!(matches!(
        store.list(&OrderQuery::new().limit(-1)).await,
        Err(StoreError::Invalid(_))
    ));

    assert_eq!(
        store
            .count_by_state(&OrderQuery::new())
            .await
            .expect("count"),
        [
            (State::Pending, 2),
            (State::Confirmed, 1),
            (State::Cancelled, 1)
        ]
    );
    assert_eq!(
        store
            .count_by_state(&OrderQuery::new().customer("ann@example.com").limit(1))
            .await
            .expect("count"),
        [(State::Pending, 1), (State::Confirmed, 1)]
    );
    sqlx::query("UPDATE orders SET payment_status = 'partially_refunded' WHERE id = $1")
        .bind(a1.id.0)
        .execute(store.pool())
        .await
        .expect("set a status");
    let (payment, fulfillment) = store.count_by_status().await.expect("count");
    // Byte order, whatever the database's collation: `_` sorts before letters.
    assert_eq!(
        payment,
        [("none".to_owned(), 3), ("partially_refunded".to_owned(), 1)]
    );
    assert_eq!(fulfillment, [("unfulfilled".to_owned(), 4)]);
}

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

#[tokio::test]
async fn history_attempts_and_the_outbox() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    transition(&store, &order, State::Confirmed, 10).await;
    let history = store.history(order.id).await.expect("history");
    assert_eq!(history.len(), 1);
    let row = &history[0];
    assert_eq!(
        (row.seq, row.from, row.to),
        (1, State::Pending, State::Confirmed)
    );
    assert_eq!(row.event, Event::Confirm);
    assert_eq!(row.actor_kind, ActorKind::System);
    assert_eq!(row.note.as_deref(), Some("by a test"));
    assert_eq!(row.metadata, serde_json::json!({ "test": true }));
    assert!(!row.is_override);
    assert_eq!(row.at, at(10));

    store
        .record_attempt(&Attempt {
            order: order.id,
            event: Event::Pay,
            actor_kind: ActorKind::Customer,
            actor_id: Some("ann@example.com".to_owned()),
            error_kind: "guard_failed".to_owned(),
            error: "no".to_owned(),
            at: at(11),
        })
        .await
        .expect("record attempt");
    let attempts = store.attempts(order.id).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].event, Event::Pay);
    assert_eq!(attempts[0].at, at(11));

    let due = store.due_messages(at(9), 10).await.expect("due");
    assert!(due.is_empty(), "not due before it was written");
    let due = store.due_messages(at(10), 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].dedupe_key, format!("order:{}:1:moved", order.id));
    assert_eq!(due[0].payload, serde_json::json!({ "test": true }));
    assert!(store.due_messages(at(10), 0).await.expect("due").is_empty());
    store
        .mark_failed(due[0].id, "timeout", at(60))
        .await
        .expect("fail");
    assert!(
        store
            .due_messages(at(59), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due = store.due_messages(at(60), 10).await.expect("due");
    assert_eq!(due[0].attempts, 1);
    store
        .mark_delivered(due[0].id, at(61))
        .await
        .expect("deliver");
    assert!(
        store
            .due_messages(at(999), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let all = store.messages(order.id).await.expect("messages");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].delivered_at, Some(at(61)));
    assert!(matches!(
        store.mark_delivered(999, at(0)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.mark_failed(999, "x", at(0)).await,
        Err(StoreError::Invalid(_))
    ));

    // A name the machine does not know is corrupt data, not a panic.
    sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, actor_kind, \
             is_override, machine_hash, created_at) \
         VALUES ($1, 2, 'teleport', 'confirmed', 'paid', 'system', FALSE, 'h', $2)",
    )
    .bind(order.id.0)
    .bind(at(20))
    .execute(store.pool())
    .await
    .expect("insert directly");
    assert!(matches!(
        store.history(order.id).await,
        Err(StoreError::Corrupt(m)) if m.contains("teleport")
    ));
}

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

#[tokio::test]
async fn verify_is_clean_on_consistent_data_and_finds_tampering() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 2)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.reserve(order.id, ProductId(1), 2, at(1))
            .await
            .expect("reserve")
    );
    tx.commit().await.expect("commit");
    transition(&store, &order, State::Confirmed, 10).await;
    assert_eq!(store.verify().await.expect("verify"), []);

    exec(
        &store,
        "UPDATE products SET on_hand = on_hand + 5 WHERE sku = 'A'",
    )
    .await
    .expect("tamper");
    sqlx::query("UPDATE orders SET state = 'paid' WHERE id = $1")
        .bind(order.id.0)
        .execute(store.pool())
        .await
        .expect("tamper");
    let findings = store.verify().await.expect("verify");
    let checks: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(
        checks,
        ["state_matches_audit", "stock_matches_ledger"],
        "{findings:#?}"
    );
    assert!(findings[1].detail.contains("`A`"), "{}", findings[1].detail);

    // An order without an audit trail must be in the initial state.
    let lonely = self::order(&store, "bob@example.com", &[("B", 1)]).await;
    sqlx::query("UPDATE orders SET state = 'shipped' WHERE id = $1")
        .bind(lonely.id.0)
        .execute(store.pool())
        .await
        .expect("tamper");
    let findings = store.verify().await.expect("verify");
    assert!(
        findings
            .iter()
            .any(|f| f.check == "state_matches_audit" && f.detail.contains("without any audit row")),
        "{findings:#?}"
    );

    // A gap in the audit trail and reservations nobody holds, with the guards lifted.
    exec(
        &store,
        "ALTER TABLE order_transitions DISABLE TRIGGER order_transitions_seq",
    )
    .await
    .expect("lift the sequence guard");
    exec(
        &store,
        "ALTER TABLE inventory_movements DISABLE TRIGGER inventory_movements_append_only",
    )
    .await
    .expect("lift the ledger guard");
    sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, actor_kind, \
             is_override, machine_hash, created_at) \
         VALUES ($1, 3, 'pay', 'confirmed', 'paid', 'system', FALSE, 'h', $2)",
    )
    .bind(order.id.0)
    .bind(at(20))
    .execute(store.pool())
    .await
    .expect("a gap");
    exec(
        &store,
        "UPDATE inventory_movements SET order_id = NULL WHERE kind = 'reserve'",
    )
    .await
    .expect("orphan a reservation");
    let findings = store.verify().await.expect("verify");
    let checks: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
    assert!(checks.contains(&"audit_sequence"), "{findings:#?}");
    assert!(
        checks.contains(&"reservations_match_orders"),
        "{findings:#?}"
    );
}

/// The engine's pipeline on PostgreSQL: row locks make concurrent commands safe.
mod engine {
    use std::sync::Arc;

    use order_core::order::{Event, State};
    use order_core::{Actor, Command, Engine, FireError, NewOrder, OrderId, Store};

    use super::connect;

    async fn engine() -> Engine {
        let store = connect().await;
        store.migrate().await.expect("migrate");
        store
            .add_product("SCARCE", "Scarce", 100, 10)
            .await
            .expect("add");
        Engine::new(Arc::new(store))
    }

    async fn new_order(engine: &Engine, n: usize) -> OrderId {
        engine
            .create_order(&NewOrder::new(
                format!("c{n}@example.com"),
                &[("SCARCE", 1)],
            ))
            .await
            .expect("create")
            .id
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_confirmations_never_oversell() {
        let engine = Arc::new(engine().await);
        let mut orders = Vec::new();
        for n in 0..24 {
            orders.push(new_order(&engine, n).await);
        }
        let tasks: Vec<_> = orders
            .into_iter()
            .map(|id| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    engine
                        .fire(id, Command::new(Event::Confirm, Actor::system()))
                        .await
                })
            })
            .collect();
        let mut confirmed = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => confirmed += 1,
                Err(FireError::GuardFailed { .. } | FireError::ActionFailed { .. }) => {}
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(confirmed, 10);
        let stock = engine
            .store()
            .product("SCARCE")
            .await
            .expect("read")
            .expect("stored");
        assert_eq!((stock.on_hand, stock.reserved), (10, 10));
        assert_eq!(engine.store().verify().await.expect("verify"), []);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn one_order_fired_at_once_moves_once() {
        let engine = Arc::new(engine().await);
        let id = new_order(&engine, 0).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    engine
                        .fire(id, Command::new(Event::Confirm, Actor::system()))
                        .await
                })
            })
            .collect();
        let mut moved = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(outcome) => {
                    moved += 1;
                    assert_eq!((outcome.to, outcome.seq), (State::Confirmed, 1));
                }
                Err(FireError::InvalidTransition { state, .. }) => {
                    assert_eq!(state, State::Confirmed, "they waited for the first");
                }
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(moved, 1);
        assert_eq!(engine.store().history(id).await.expect("history").len(), 1);
        assert_eq!(engine.store().verify().await.expect("verify"), []);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn one_command_sent_at_once_runs_once_and_replays() {
        let engine = Arc::new(engine().await);
        let id = new_order(&engine, 0).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    engine
                        .fire(
                            id,
                            Command::new(Event::Confirm, Actor::system()).key("confirm-once"),
                        )
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        let replayed = outcomes
            .iter()
            .filter(|o| o.as_ref().is_ok_and(|o| o.replayed))
            .count();
        assert!(
            outcomes.iter().all(Result::is_ok),
            "every copy succeeds: {outcomes:?}"
        );
        assert_eq!(replayed, 7);
    }
}
