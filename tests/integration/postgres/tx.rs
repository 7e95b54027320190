//! The adapter's write transactions on a real server: atomicity, compare-and-set,
//! inventory, row locks and concurrency, refusals, and errors worth retrying.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use order_core::order::{ActorKind, Event, State};
use order_core::store::postgres::is_retryable;
use order_core::store::{Movement, NewEntityTransition, NewMessage, NewPayment, NewTransition};
use order_core::{
    ItemId, OrderId, PostgresStore, ProductId, Refund, ShipmentId, Store, StoreError,
};

use super::{at, exec, order, store, transition};

const A: ProductId = ProductId(1);
const B: ProductId = ProductId(2);

/// Waits until a session of this database waits for a lock that another one holds
/// (polling `pg_stat_activity`: an observed state, not a guess at how long it takes).
async fn until_someone_waits_for_a_lock(store: &PostgresStore) {
    for _ in 0..3_000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await
        .expect("read pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no transaction ever waited for a lock");
}

#[tokio::test]
async fn reserve_never_oversells() {
    let store = store().await;
    let first = order(&store, "ann@example.com", &[("B", 2)]).await;
    let second = order(&store, "bob@example.com", &[("B", 2)]).await;
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.reserve(first.id, B, 2, at(1)).await.expect("reserve"));
    assert!(!tx.reserve(second.id, B, 2, at(1)).await.expect("reserve"));
    assert!(tx.reserve(second.id, B, 1, at(1)).await.expect("reserve"));
    assert!(tx.reserve(second.id, B, 0, at(1)).await.expect("nothing"));
    assert!(matches!(
        tx.reserve(second.id, B, -1, at(1)).await,
        Err(StoreError::Invalid(_))
    ));
    let locked = tx.lock_products(&[A, B]).await.expect("lock");
    assert_eq!(
        locked
            .iter()
            .map(|p| (p.id, p.reserved))
            .collect::<Vec<_>>(),
        [(A, 0), (B, 3)]
    );
    assert_eq!(tx.lock_products(&[]).await.expect("lock nothing"), []);
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
async fn concurrent_reservations_never_oversell() {
    let store = Arc::new(store().await);
    store
        .add_product("C", "Cherry", 10, 10)
        .await
        .expect("add C");
    let c = ProductId(3);
    // 16 transactions each reserve 1 of A's 10: with the products locked first (as the
    // engine does), and of C's 10 with the conditional update alone.
    for (product, lock_first) in [(A, true), (c, false)] {
        let mut orders = Vec::new();
        for n in 0..16 {
            orders.push(order(&store, &format!("c{n}@example.com"), &[("A", 1)]).await);
        }
        let tasks: Vec<_> = orders
            .into_iter()
            .map(|order| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut tx = store.begin().await?;
                    if lock_first {
                        let products = tx.lock_products(&[product]).await?;
                        assert_eq!(products.len(), 1);
                    }
                    let reserved = tx.reserve(order.id, product, 1, at(1)).await?;
                    let current = tx.lock_order(order.id).await?.expect("order exists");
                    assert!(tx.update_order(&current, at(2)).await?);
                    tx.commit().await?;
                    Ok::<bool, StoreError>(reserved)
                })
            })
            .collect();
        let mut reserved = 0;
        for task in tasks {
            if task.await.expect("task").expect("no database error") {
                reserved += 1;
            }
        }
        assert_eq!(
            reserved, 10,
            "product {product}, locked first: {lock_first}"
        );
        let stock = store
            .products()
            .await
            .expect("read")
            .into_iter()
            .find(|p| p.id == product)
            .expect("stored");
        assert_eq!((stock.on_hand, stock.reserved), (10, 10));
    }
    assert_eq!(store.verify().await.expect("verify"), []);
}

/// A shipment's audit row by the carrier, at `secs`.
fn shipment_step<'a>(
    shipment: ShipmentId,
    order: OrderId,
    seq: i64,
    (event, from, to): (&'a str, &'a str, &'a str),
    secs: i64,
) -> NewEntityTransition<'a> {
    NewEntityTransition {
        machine: "Shipment",
        entity: shipment.0,
        order,
        seq,
        event,
        from,
        to,
        actor_kind: "carrier",
        actor_id: None,
        reason: None,
        is_override: false,
        machine_hash: "hash",
        external_id: None,
        metadata: &serde_json::Value::Null,
        at: at(secs),
    }
}

#[tokio::test]
async fn lock_shipment_makes_a_second_transaction_wait_for_the_first() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let line = store.items(order.id).await.expect("items")[0].id;
    let mut tx = store.begin().await.expect("begin");
    let shipment = tx
        .insert_shipment(order.id, "dhl", Some("T1"), &[(line, 1)], at(1))
        .await
        .expect("ship");
    tx.commit().await.expect("commit");
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = |events: &Arc<Mutex<Vec<String>>>, event: String| {
        events.lock().expect("the log").push(event);
    };

    let mut first = store.begin().await.expect("begin");
    first
        .lock_order(order.id)
        .await
        .expect("lock")
        .expect("exists");
    let parcel = first
        .lock_shipment(shipment)
        .await
        .expect("lock")
        .expect("exists");
    assert_eq!(parcel.items, [(line, 1)]);
    log(&events, "first locked".into());

    let second = {
        let store = store.clone();
        let events = Arc::clone(&events);
        tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            log(&events, "second asks".into());
            // Not the order first: the test watches the parcel's own lock.
            let seen = tx
                .lock_shipment(shipment)
                .await
                .expect("lock")
                .expect("exists");
            let seq = tx
                .entity_trail("Shipment", shipment.0)
                .await
                .expect("trail")
                .len();
            log(
                &events,
                format!("second locked `{}` at seq {seq}", seen.state),
            );
            let names = ("dispatch", "in_transit", "out_for_delivery");
            let next = shipment_step(shipment, seen.order, seq as i64 + 1, names, 3);
            tx.write_shipment_transition(&next).await.expect("follows");
            tx.commit().await.expect("commit");
        })
    };
    until_someone_waits_for_a_lock(&store).await;
    log(&events, "first moves and commits".into());
    let pick_up = shipment_step(
        shipment,
        order.id,
        1,
        ("pick_up", "label_created", "in_transit"),
        2,
    );
    first
        .write_shipment_transition(&pick_up)
        .await
        .expect("pick up");
    first.commit().await.expect("commit");

    second.await.expect("task");
    assert_eq!(
        *events.lock().expect("the log"),
        [
            "first locked",
            "second asks",
            "first moves and commits",
            "second locked `in_transit` at seq 1"
        ]
    );
    let trail = store
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("trail");
    let to: Vec<&str> = trail.iter().map(|r| r.to.as_str()).collect();
    assert_eq!(to, ["in_transit", "out_for_delivery"]);
    assert_eq!(store.verify().await.expect("verify"), []);
}

#[tokio::test]
async fn lock_order_makes_a_second_transaction_wait_for_the_first() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = |events: &Arc<Mutex<Vec<String>>>, event: String| {
        events.lock().expect("the log").push(event);
    };

    let mut first = store.begin().await.expect("begin");
    let mut locked = first
        .lock_order(order.id)
        .await
        .expect("lock")
        .expect("exists");
    log(&events, "first locked".into());

    let second = {
        let store = store.clone();
        let events = Arc::clone(&events);
        tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            log(&events, "second asks".into());
            let seen = tx
                .lock_order(order.id)
                .await
                .expect("lock")
                .expect("exists");
            log(&events, format!("second locked version {}", seen.version));
            tx.rollback().await.expect("rollback");
            seen
        })
    };
    until_someone_waits_for_a_lock(&store).await;
    log(&events, "first commits".into());
    locked.state = State::Confirmed;
    assert!(first.update_order(&locked, at(1)).await.expect("update"));
    first.commit().await.expect("commit");

    let seen = second.await.expect("task");
    assert_eq!(
        *events.lock().expect("the log"),
        [
            "first locked",
            "second asks",
            "first commits",
            "second locked version 1"
        ]
    );
    assert_eq!(
        (seen.state, seen.version),
        (State::Confirmed, 1),
        "the second reads what the first committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locked_products_do_not_hold_up_new_orders_of_them() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let mut tx = store.begin().await.expect("begin");
    tx.lock_products(&[A, B]).await.expect("lock");
    assert!(tx.reserve(order.id, A, 1, at(1)).await.expect("reserve"));
    // While the transaction holds both products, a new order of them goes through
    // (a guard against hanging, not a measurement).
    let created = tokio::time::timeout(
        Duration::from_secs(60),
        store.create_order(
            &order_core::NewOrder::new("bob@example.com", &[("A", 1), ("B", 1)]),
            State::Pending,
            at(2),
        ),
    )
    .await
    .expect("the new order does not wait for the lock")
    .expect("created");
    assert_eq!(created.total_cents, 250 + 1000);
    tx.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn products_locked_in_id_order_never_deadlock() {
    let store = Arc::new(store().await);
    let order = order(&store, "ann@example.com", &[("A", 1), ("B", 1)]).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..10 {
                    let mut tx = store.begin().await?;
                    tx.lock_products(&[A, B]).await?;
                    assert!(tx.reserve(order.id, B, 1, at(1)).await?);
                    assert!(tx.reserve(order.id, A, 1, at(1)).await?);
                    tx.move_stock(order.id, A, Movement::Release, 1, at(2))
                        .await?;
                    tx.move_stock(order.id, B, Movement::Release, 1, at(2))
                        .await?;
                    tx.commit().await?;
                }
                Ok::<(), StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("no deadlock");
    }
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

    // A copy read before another transaction committed is stale too.
    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.update_order(&next, at(9)).await.expect("stale write"),
        "version 0 was replaced by a committed write"
    );
    tx.rollback().await.expect("rollback");
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
    tx.move_stock(order.id, A, Movement::Release, 0, at(5))
        .await
        .expect("nothing to move");
    tx.move_stock(order.id, A, Movement::Release, 1, at(6))
        .await
        .expect("release the rest");
    assert_eq!(tx.reserved_by(order.id).await.expect("held"), []);
    assert_eq!(
        tx.restocked_by(order.id).await.expect("restocked"),
        [(A, 2)]
    );
    // Refusals; the transaction goes on after each.
    let err = tx
        .move_stock(order.id, A, Movement::Release, 1, at(7))
        .await
        .expect_err("nothing left to release");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("check constraint")),
        "{err}"
    );
    assert!(matches!(
        tx.move_stock(order.id, ProductId(99), Movement::Restock, 1, at(7))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        tx.move_stock(order.id, A, Movement::Ship, -1, at(7)).await,
        Err(StoreError::Invalid(_))
    ));
    tx.move_stock(order.id, A, Movement::Reserve, 1, at(8))
        .await
        .expect("a reservation as a movement");
    assert!(matches!(
        tx.move_stock(order.id, A, Movement::Reserve, 100, at(8))
            .await,
        Err(StoreError::Invalid(_))
    ));
    tx.commit().await.expect("commit");
    let product = store.product("A").await.expect("read").expect("exists");
    assert_eq!((product.on_hand, product.reserved), (10 - 3 + 2 - 1, 1));
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
    assert!(matches!(
        tx.record_command("k1", order.id, "{}", at(1)).await,
        Err(StoreError::Invalid(_))
    ));
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
    assert!(matches!(
        tx.insert_payment(&NewPayment {
            order: order.id,
            amount_cents: 1000,
            idempotency_key: "pay-1",
            at: at(2),
        })
        .await,
        Err(StoreError::Invalid(_))
    ));
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
    let mut bogus = second.clone();
    bogus.state = "lost".to_owned();
    assert!(matches!(
        tx.update_payment(&bogus, at(3)).await,
        Err(StoreError::Invalid(_))
    ));

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
    assert!(matches!(
        tx.update_refund_state("nope", "reversed").await,
        Err(StoreError::Invalid(_))
    ));
    tx.insert_refund(&refund(1000, "r3"), at(6))
        .await
        .expect("the reversed refund no longer counts");
    assert!(
        matches!(
            tx.update_refund_state("r1", "succeeded").await,
            Err(StoreError::Invalid(m)) if m.contains("exceed the captured")
        ),
        "reinstating r1 would exceed the capture"
    );
    assert_eq!(tx.refunds(order.id).await.expect("read").len(), 2);
    tx.commit().await.expect("commit");
    assert_eq!(store.payments(order.id).await.expect("read").len(), 2);
    assert_eq!(store.refunds(order.id).await.expect("read").len(), 2);
}

#[tokio::test]
async fn refusals_leave_the_transaction_usable() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let metadata = serde_json::json!({ "n": 1 });
    let row = |seq| NewTransition {
        order: order.id,
        seq,
        event: Event::Confirm,
        from: State::Pending,
        to: State::Confirmed,
        actor_kind: ActorKind::System,
        actor_id: None,
        reason: None,
        note: None,
        is_override: false,
        machine_hash: "hash",
        idempotency_key: None,
        metadata: &metadata,
        at: at(1),
    };
    let message = |dedupe_key| NewMessage {
        aggregate: order.id,
        kind: "moved",
        payload: &metadata,
        dedupe_key,
        at: at(1),
    };
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .append_transition(&row(2))
        .await
        .expect_err("seq 2 first");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("seq must follow")),
        "{err}"
    );
    let mut missing = row(1);
    missing.order = OrderId(999);
    assert!(matches!(
        tx.append_transition(&missing).await,
        Err(StoreError::Invalid(_))
    ));
    tx.append_transition(&row(1)).await.expect("seq 1");
    assert!(matches!(
        tx.append_transition(&row(1)).await,
        Err(StoreError::Invalid(_))
    ));
    tx.enqueue(&message("m1")).await.expect("enqueue");
    assert!(matches!(
        tx.enqueue(&message("m1")).await,
        Err(StoreError::Invalid(_))
    ));
    let mut negative = order.clone();
    negative.total_cents = -1;
    assert!(matches!(
        tx.update_order(&negative, at(1)).await,
        Err(StoreError::Invalid(_))
    ));
    let mut confirmed = order.clone();
    confirmed.state = State::Confirmed;
    assert!(tx.update_order(&confirmed, at(1)).await.expect("update"));
    tx.commit()
        .await
        .expect("every refusal left the transaction usable");
    assert_eq!(store.history(order.id).await.expect("history").len(), 1);
    assert_eq!(store.messages(order.id).await.expect("messages").len(), 1);
    assert_eq!(store.verify().await.expect("verify"), []);
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
    for lines in [vec![(items[0].id, 5)], vec![(ItemId(999), 1)], vec![]] {
        assert!(matches!(
            tx.insert_shipment(parent.id, "dhl", None, &lines, at(21))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    let path = [
        ("pick_up", "label_created", "in_transit"),
        ("dispatch", "in_transit", "out_for_delivery"),
        ("deliver", "out_for_delivery", "delivered"),
    ];
    for (seq, names) in (1..).zip(path) {
        let row = shipment_step(shipment, parent.id, seq, names, 27 + seq);
        tx.write_shipment_transition(&row).await.expect("move");
    }
    let teleport = shipment_step(shipment, parent.id, 4, ("x", "delivered", "teleported"), 31);
    assert!(matches!(
        tx.write_shipment_transition(&teleport).await,
        Err(StoreError::Invalid(_))
    ));
    tx.set_returned(items[0].id, 1).await.expect("returned");
    assert!(matches!(
        tx.set_returned(items[0].id, 2).await,
        Err(StoreError::Invalid(_))
    ));
    let shipments = tx.shipments(parent.id).await.expect("read");
    assert_eq!(shipments.len(), 1, "the refused parcels left nothing");
    assert_eq!(shipments[0].items, [(items[0].id, 1)]);
    assert_eq!(shipments[0].delivered_at, Some(at(30)));
    assert_eq!(shipments[0].state, "delivered");
    let trail = tx
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("trail");
    assert_eq!(trail.len(), 3, "the refused row left nothing");
    assert_eq!(shipments[0].tracking_number.as_deref(), Some("T1"));

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
    // The shipped line cannot be replaced away.
    assert!(matches!(
        tx.replace_items(parent.id, &[(B, 1, 1000)]).await,
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
    assert_eq!(
        tx.entered_at(OrderId(999), State::Pending)
            .await
            .expect("read"),
        None
    );
    tx.commit().await.expect("commit");
    assert_eq!(store.shipments(parent.id).await.expect("read").len(), 1);
    assert_eq!(store.verify().await.expect("verify"), []);
    assert_eq!(store.order(OrderId(999)).await.expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_and_deadlocks_are_retryable() {
    let store = store().await;

    // REPEATABLE READ: a row changed since the snapshot cannot be updated.
    let mut reader = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .expect("begin");
    let _: i64 = sqlx::query_scalar("SELECT reserved FROM products WHERE id = 1")
        .fetch_one(&mut *reader)
        .await
        .expect("take the snapshot");
    exec(&store, "UPDATE products SET name = 'Apricot' WHERE id = 1")
        .await
        .expect("a concurrent write");
    let err = sqlx::query("UPDATE products SET name = 'Avocado' WHERE id = 1")
        .execute(&mut *reader)
        .await
        .expect_err("a serialization failure");
    reader.rollback().await.expect("rollback");
    let err = StoreError::Database(err);
    assert!(is_retryable(&err), "{err}");

    // Two transactions locking two rows in opposite orders: one is chosen to fail.
    let (mut first, mut second) = (
        store.pool().begin().await.expect("begin"),
        store.pool().begin().await.expect("begin"),
    );
    let superuser: bool = sqlx::query_scalar("SELECT current_setting('is_superuser') = 'on'")
        .fetch_one(store.pool())
        .await
        .expect("read a setting");
    if superuser {
        // Detected sooner than after the default second (only superusers may ask).
        for tx in [&mut first, &mut second] {
            sqlx::query("SET LOCAL deadlock_timeout = '50ms'")
                .execute(&mut **tx)
                .await
                .expect("set");
        }
    }
    let touch = "UPDATE products SET name = name WHERE id = $1";
    for (tx, id) in [(&mut first, 1_i64), (&mut second, 2)] {
        sqlx::query(touch)
            .bind(id)
            .execute(&mut **tx)
            .await
            .expect("lock one row");
    }
    let crossing = tokio::spawn(async move {
        let result = sqlx::query(touch).bind(2_i64).execute(&mut *first).await;
        first.rollback().await.expect("rollback");
        result.map(drop)
    });
    until_someone_waits_for_a_lock(&store).await;
    let mine = sqlx::query(touch)
        .bind(1_i64)
        .execute(&mut *second)
        .await
        .map(drop);
    second.rollback().await.expect("rollback");
    let theirs = crossing.await.expect("task");
    let failures: Vec<StoreError> = [mine, theirs]
        .into_iter()
        .filter_map(Result::err)
        .map(StoreError::Database)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(is_retryable(&failures[0]), "{}", failures[0]);

    // An error already classified is recognised too.
    assert!(is_retryable(&StoreError::Retryable(
        "classified".to_owned()
    )));

    // Refusals and other errors are not worth retrying.
    assert!(!is_retryable(&StoreError::Invalid("no".to_owned())));
    let unique = exec(
        &store,
        "INSERT INTO products (sku, name, price_cents) VALUES ('A', 'again', 1)",
    )
    .await
    .expect_err("a duplicate");
    assert!(!is_retryable(&StoreError::Database(unique)));
    assert!(!is_retryable(&StoreError::Database(
        sqlx::Error::RowNotFound
    )));
}

/// `lock_for_transition` reads in the statement that takes the lock. When it waited for
/// a transaction that wrote a transition meanwhile, it still returns that transition's
/// sequence number and the order's new version, not what its snapshot saw.
#[tokio::test]
async fn lock_for_transition_reads_what_the_transaction_it_waited_for_wrote() {
    let store = Arc::new(store().await);
    let order = order(&store, "ann@example.com", &[("A", 1), ("B", 2)]).await;
    let mut first = store.begin().await.expect("begin");
    let locked = first
        .lock_for_transition(order.id)
        .await
        .expect("lock")
        .expect("the order exists");
    assert_eq!((locked.1.last_seq, locked.1.items.len()), (0, 2));
    let stock = locked.1.stock.clone().expect("read with the lines");
    assert_eq!(stock.len(), 2);

    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut second = store.begin().await.expect("begin");
            let found = second
                .lock_for_transition(order.id)
                .await
                .expect("lock")
                .expect("the order exists");
            second.rollback().await.expect("rollback");
            found
        })
    };
    until_someone_waits_for_a_lock(&store).await;
    let mut moved = locked.0.clone();
    moved.state = State::Confirmed;
    assert!(first.update_order(&moved, at(2)).await.expect("written"));
    let metadata = serde_json::Value::Null;
    first
        .append_transition(&NewTransition {
            order: order.id,
            seq: 1,
            event: Event::Confirm,
            from: State::Pending,
            to: State::Confirmed,
            actor_kind: ActorKind::System,
            actor_id: None,
            reason: None,
            note: None,
            is_override: false,
            machine_hash: "hash",
            idempotency_key: None,
            metadata: &metadata,
            at: at(2),
        })
        .await
        .expect("appended");
    first.commit().await.expect("commit");

    let (seen, reads) = waiting.await.expect("the second transaction ran");
    assert_eq!(seen.version, locked.0.version + 1);
    assert_eq!(seen.state, State::Confirmed);
    assert_eq!(reads.last_seq, 1, "the waited-for transition is seen");
    assert_eq!(reads.items.len(), 2);
}
