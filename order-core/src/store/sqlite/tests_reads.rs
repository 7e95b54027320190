//! The adapter's reads against real SQLite databases: the catalog, people and new
//! orders, order queries, history, attempts and the outbox, and `verify`.

use super::tests::{at, order, store, transition};
use crate::error::StoreError;
use crate::order::{ActorKind, Event, State};
use crate::query::OrderQuery;
use crate::store::Store;
use crate::types::{FulfillmentStatus, NewOrder, Order, OrderId, PaymentStatus};

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
