//! The adapter against real SQLite databases: schema, constraints, reads and `verify`.

use chrono::{DateTime, TimeZone, Utc};

use super::SqliteStore;
use crate::error::StoreError;
use crate::order::{ActorKind, Event, State};
use crate::query::OrderQuery;
use crate::store::{NewMessage, NewTransition, Store};
use crate::types::{FulfillmentStatus, NewOrder, Order, OrderId, PaymentStatus};

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
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 3)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(store.pool()).await.expect("migrate to 0002");
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

#[tokio::test]
async fn catalog_people_and_new_orders() {
    let store = store().await;
    assert!(matches!(
        store.add_product("A", "Again", 1, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.add_product("C", "Cheap", -1, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.add_product("C", "Cheap", 1, -1).await,
        Err(StoreError::Invalid(_))
    ));
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
    assert_eq!(first.number, format!("ORD-{:06}", first.id.0));
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
    let (payment, fulfillment) = store.count_by_status().await.expect("count");
    assert_eq!(payment, [("none".to_owned(), 4)]);
    assert_eq!(fulfillment, [("unfulfilled".to_owned(), 4)]);
}

#[tokio::test]
async fn the_state_query_uses_the_state_index() {
    let store = store().await;
    for query in [
        OrderQuery::new().in_states(&[State::Paid, State::Processing]),
        OrderQuery::new()
            .in_states(&[State::Paid])
            .updated_between(at(0), at(10))
            .after(OrderId(5))
            .limit(50),
    ] {
        let mut builder = super::query::list_query("EXPLAIN QUERY PLAN ", &query).expect("build");
        let plan: Vec<(i64, i64, i64, String)> = builder
            .build_query_as()
            .fetch_all(store.pool())
            .await
            .expect("explain");
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("USING INDEX orders_state_updated")),
            "{details:#?}"
        );
    }
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
    assert_eq!(row.at, at(10));

    store
        .record_attempt(&crate::types::Attempt {
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

    let due = store.due_messages(at(9), 10).await.expect("due");
    assert!(due.is_empty(), "not due before it was written");
    let due = store.due_messages(at(10), 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].dedupe_key, format!("order:{}:1:moved", order.id));
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

    // A name the machine does not know is corrupt data, not a panic.
    sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, actor_kind, \
             is_override, machine_hash, metadata, created_at) \
         VALUES (?, 2, 'teleport', 'confirmed', 'paid', 'system', 0, 'h', 'null', ?)",
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
async fn verify_is_clean_on_consistent_data_and_finds_tampering() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 2)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.reserve(order.id, crate::types::ProductId(1), 2, at(1))
            .await
            .expect("reserve")
    );
    tx.commit().await.expect("commit");
    transition(&store, &order, State::Confirmed, 10).await;
    assert_eq!(store.verify().await.expect("verify"), []);

    sqlx::query("UPDATE products SET on_hand = on_hand + 5 WHERE sku = 'A'")
        .execute(store.pool())
        .await
        .expect("tamper");
    sqlx::query("UPDATE orders SET state = 'paid' WHERE id = ?")
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
    sqlx::query("UPDATE orders SET state = 'shipped' WHERE id = ?")
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
}
