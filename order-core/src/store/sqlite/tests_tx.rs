//! The adapter's write transactions: atomicity, compare-and-set, inventory, and the
//! parts of an order the engine writes.

use std::sync::Arc;

use super::SqliteStore;
use super::tests::{at, order, store, transition};
use crate::error::StoreError;
use crate::order::State;
use crate::store::{Movement, NewEntityTransition, NewPayment, Store};
use crate::types::{ItemId, OrderId, ProductId, Refund};

const A: ProductId = ProductId(1);
const B: ProductId = ProductId(2);

#[tokio::test]
async fn reserve_never_oversells() {
    let store = store().await;
    let first = order(&store, "ann@example.com", &[("B", 2)]).await;
    let second = order(&store, "bob@example.com", &[("B", 2)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.reserve(first.id, B, 2, at(1)).await.expect("reserve"));
    assert!(!tx.reserve(second.id, B, 2, at(1)).await.expect("reserve"));
    assert!(tx.reserve(second.id, B, 1, at(1)).await.expect("reserve"));
    let locked = tx.lock_products(&[A, B]).await.expect("lock");
    assert_eq!(
        locked
            .iter()
            .map(|p| (p.id, p.reserved))
            .collect::<Vec<_>>(),
        [(A, 0), (B, 3)]
    );
    assert_eq!(tx.reserved_by(first.id).await.expect("held"), [(B, 2)]);
    assert_eq!(tx.reserved_by(second.id).await.expect("held"), [(B, 1)]);
    tx.commit().await.expect("commit");
    let movements: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inventory_movements WHERE kind = 'reserve'")
            .fetch_one(store.pool())
            .await
            .expect("count");
    assert_eq!(movements, 2, "the refused reservation wrote no ledger row");
    assert_eq!(store.verify().await.expect("verify"), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_on_a_file_never_oversell_nor_fail_busy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    store.add_product("A", "Apple", 250, 10).await.expect("add");
    let mut orders = Vec::new();
    for n in 0..24 {
        orders.push(order(&store, &format!("c{n}@example.com"), &[("A", 1)]).await);
    }
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|order| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // Read, then write: BEGIN IMMEDIATE makes the upgrade impossible to lose.
                let mut tx = store.begin().await?;
                let products = tx.lock_products(&[A]).await?;
                let mut reserved = false;
                if products[0].available() >= 1 {
                    reserved = tx.reserve(order.id, A, 1, at(1)).await?;
                }
                let current = tx.lock_order(order.id).await?.expect("order exists");
                tx.update_order(&current, at(2)).await?;
                tx.commit().await?;
                Ok::<bool, StoreError>(reserved)
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.expect("task").expect("no busy errors") {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    let product = store.product("A").await.expect("read").expect("stored");
    assert_eq!((product.on_hand, product.reserved), (10, 10));
    assert_eq!(store.verify().await.expect("verify"), []);
}

#[tokio::test]
async fn a_dropped_transaction_leaves_nothing() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    {
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.reserve(order.id, A, 3, at(1)).await.expect("reserve"));
        let mut moved = tx
            .lock_order(order.id)
            .await
            .expect("lock")
            .expect("exists");
        moved.state = State::Confirmed;
        assert!(tx.update_order(&moved, at(1)).await.expect("update"));
        tx.add_note(order.id, "sam", "hello", at(1))
            .await
            .expect("note");
        // Dropped here without commit.
    }
    let after = store.order(order.id).await.expect("read").expect("exists");
    assert_eq!(after, order);
    let product = store.product("A").await.expect("read").expect("exists");
    assert_eq!(product.reserved, 0);
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_notes")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(notes, 0);

    let mut tx = store.begin().await.expect("begin");
    assert!(tx.reserve(order.id, A, 3, at(1)).await.expect("reserve"));
    tx.rollback().await.expect("rollback");
    assert_eq!(store.verify().await.expect("verify"), []);
    let product = store.product("A").await.expect("read").expect("exists");
    assert_eq!(product.reserved, 0);
}

#[tokio::test]
async fn update_order_is_a_compare_and_set() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let mut tx = store.begin().await.expect("begin");
    let mut next = order.clone();
    next.state = State::Confirmed;
    next.shipping_address = Some("2 Side St".to_owned());
    next.total_cents = 1;
    assert!(tx.update_order(&next, at(7)).await.expect("first write"));
    assert!(
        !tx.update_order(&next, at(8)).await.expect("stale write"),
        "version 0 is stale now"
    );
    tx.commit().await.expect("commit");
    let stored = store.order(order.id).await.expect("read").expect("exists");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.state, State::Confirmed);
    assert_eq!(stored.shipping_address.as_deref(), Some("2 Side St"));
    assert_eq!(stored.total_cents, 1);
    assert_eq!(stored.updated_at, at(7));
    assert_eq!(stored.created_at, order.created_at);
}

#[tokio::test]
async fn stock_movements_keep_the_ledger_in_step() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 5)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.reserve(order.id, A, 5, at(1)).await.expect("reserve"));
    tx.move_stock(order.id, A, Movement::Release, 1, at(2))
        .await
        .expect("release");
    tx.move_stock(order.id, A, Movement::Ship, 3, at(3))
        .await
        .expect("ship");
    assert_eq!(tx.reserved_by(order.id).await.expect("held"), [(A, 1)]);
    tx.move_stock(order.id, A, Movement::Restock, 2, at(4))
        .await
        .expect("restock");
    tx.move_stock(order.id, A, Movement::Adjust, -1, at(5))
        .await
        .expect("adjust");
    tx.move_stock(order.id, A, Movement::Release, 1, at(6))
        .await
        .expect("release the rest");
    assert_eq!(tx.reserved_by(order.id).await.expect("held"), []);
    assert_eq!(
        tx.restocked_by(order.id).await.expect("restocked"),
        [(A, 2)]
    );
    let err = tx
        .move_stock(order.id, A, Movement::Release, 1, at(7))
        .await
        .expect_err("nothing left to release");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(matches!(
        tx.move_stock(order.id, ProductId(99), Movement::Restock, 1, at(7))
            .await,
        Err(StoreError::Invalid(_))
    ));
    tx.commit().await.expect("commit");
    let product = store.product("A").await.expect("read").expect("exists");
    assert_eq!((product.on_hand, product.reserved), (10 - 3 + 2 - 1, 0));
    assert_eq!(store.verify().await.expect("verify"), []);
}

#[tokio::test]
async fn payments_refunds_and_idempotency() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("B", 1)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.command_outcome("k1").await.expect("read"), None);
    tx.record_command("k1", order.id, "{\"ok\":true}", at(1))
        .await
        .expect("record");
    assert_eq!(
        tx.command_outcome("k1").await.expect("read").as_deref(),
        Some("{\"ok\":true}")
    );
    let first = tx
        .insert_payment(&NewPayment {
            order: order.id,
            amount_cents: 1000,
            idempotency_key: "pay-1",
            at: at(1),
        })
        .await
        .expect("insert");
    assert_eq!((first.attempt_no, first.state.as_str()), (1, "initiated"));
    let mut second = tx
        .insert_payment(&NewPayment {
            order: order.id,
            amount_cents: 1000,
            idempotency_key: "pay-2",
            at: at(2),
        })
        .await
        .expect("insert");
    assert_eq!(second.attempt_no, 2);
    second.state = "captured".to_owned();
    second.processor_ref = Some("ch_1".to_owned());
    second.fraud_review = true;
    tx.update_payment(&second, at(3)).await.expect("update");
    assert_eq!(tx.payments(order.id).await.expect("read")[1], second);

    let refund = |amount_cents, key: &str| Refund {
        order: order.id,
        payment: second.id,
        amount_cents,
        state: "succeeded".to_owned(),
        reason: Some("goodwill".to_owned()),
        idempotency_key: key.to_owned(),
        processor_ref: None,
    };
    tx.insert_refund(&refund(600, "r1"), at(4))
        .await
        .expect("refund");
    let err = tx
        .insert_refund(&refund(500, "r2"), at(5))
        .await
        .expect_err("more than captured");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("exceed the captured")),
        "{err}"
    );
    tx.update_refund_state("r1", "reversed")
        .await
        .expect("reverse");
    tx.insert_refund(&refund(1000, "r3"), at(6))
        .await
        .expect("the reversed refund no longer counts");
    assert_eq!(tx.refunds(order.id).await.expect("read").len(), 2);
    tx.commit().await.expect("commit");
    assert_eq!(store.payments(order.id).await.expect("read").len(), 2);
    assert_eq!(store.refunds(order.id).await.expect("read").len(), 2);
}

#[tokio::test]
async fn shipments_lines_and_splits() {
    let store = store().await;
    let parent = order(&store, "ann@example.com", &[("A", 2), ("B", 1)]).await;
    let parent = transition(&store, &parent, State::Confirmed, 10).await;
    let items = store.items(parent.id).await.expect("items");

    let mut tx = store.begin().await.expect("begin");
    let shipment = tx
        .insert_shipment(parent.id, "dhl", Some("T1"), &[(items[0].id, 1)], at(20))
        .await
        .expect("ship");
    assert!(matches!(
        tx.insert_shipment(parent.id, "dhl", None, &[(items[0].id, 5)], at(21))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        tx.insert_shipment(parent.id, "dhl", None, &[(ItemId(999), 1)], at(21))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let path = [
        ("pick_up", "label_created", "in_transit"),
        ("dispatch", "in_transit", "out_for_delivery"),
        ("deliver", "out_for_delivery", "delivered"),
    ];
    for (seq, (event, from, to)) in (1..).zip(path) {
        let step = NewEntityTransition {
            machine: "Shipment",
            entity: shipment.0,
            order: parent.id,
            seq,
            event,
            from,
            to,
            actor_kind: "carrier",
            actor_id: Some("dhl"),
            reason: None,
            is_override: false,
            machine_hash: "hash",
            external_id: None,
            metadata: &serde_json::Value::Null,
            at: at(28 + seq),
        };
        tx.write_shipment_transition(&step).await.expect("move");
    }
    tx.set_returned(items[0].id, 1).await.expect("returned");
    assert!(matches!(
        tx.set_returned(items[0].id, 2).await,
        Err(StoreError::Invalid(_))
    ));
    let shipments = tx.shipments(parent.id).await.expect("read");
    assert_eq!(shipments.len(), 1);
    assert_eq!(shipments[0].items, [(items[0].id, 1)]);
    assert_eq!(shipments[0].delivered_at, Some(at(31)));
    assert_eq!(shipments[0].state, "delivered");
    let trail = tx
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("trail");
    assert_eq!(trail.len(), 3);

    // Split the second line off into a child order.
    let child = tx
        .insert_child_order(&parent, State::Confirmed, at(40))
        .await
        .expect("child");
    assert_eq!(child.parent, Some(parent.id));
    assert_eq!(
        (child.customer, child.total_cents, child.version),
        (parent.customer, 0, 0)
    );
    assert_eq!(child.number, format!("ORD-{:06}", child.id.0));
    tx.replace_items(child.id, &[(A, 1, 250)])
        .await
        .expect("replace");
    tx.move_items(&[items[1].id], child.id).await.expect("move");
    let lines = tx.items(child.id).await.expect("items");
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.line_no, l.sku.as_str()))
            .collect::<Vec<_>>(),
        [(1, "A"), (2, "B")]
    );
    assert_eq!(tx.items(parent.id).await.expect("items").len(), 1);
    assert!(matches!(
        tx.move_items(&[ItemId(999)], child.id).await,
        Err(StoreError::Invalid(_))
    ));

    // When each order entered its state: by a transition, or at creation.
    assert_eq!(
        tx.entered_at(parent.id, State::Confirmed)
            .await
            .expect("read"),
        Some(at(10))
    );
    assert_eq!(
        tx.entered_at(parent.id, State::Pending)
            .await
            .expect("read"),
        Some(at(0))
    );
    assert_eq!(
        tx.entered_at(parent.id, State::Paid).await.expect("read"),
        None
    );
    assert_eq!(
        tx.entered_at(child.id, State::Confirmed)
            .await
            .expect("read"),
        Some(at(40))
    );
    tx.commit().await.expect("commit");
    assert_eq!(store.shipments(parent.id).await.expect("read").len(), 1);
    assert_eq!(store.verify().await.expect("verify"), []);
    assert_eq!(store.order(OrderId(999)).await.expect("read"), None);
}
