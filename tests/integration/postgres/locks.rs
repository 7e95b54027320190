//! Row locks on PostgreSQL: a second transaction waits for the first to commit and
//! then reads what it wrote; products locked for no key update do not hold up new
//! orders, and products locked in id order never deadlock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use order_core::order::State;
use order_core::store::{Movement, NewEntityTransition};
use order_core::{OrderId, ProductId, ShipmentId, Store, StoreError};

use super::{at, confirm_row, order, store, until_someone_waits_for_a_lock};

const A: ProductId = ProductId(1);
const B: ProductId = ProductId(2);

/// What the transactions of a test did, in the order they did it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().expect("the log").push(event.into());
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().expect("the log").clone()
    }
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

/// A parcel locked by one transaction makes a second wait, then read the first's move.
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
    let log = Log::default();

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
    log.push("first locked");

    let second = {
        let store = store.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            log.push("second asks");
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
            log.push(format!("second locked `{}` at seq {seq}", seen.state));
            let names = ("dispatch", "in_transit", "out_for_delivery");
            let next = shipment_step(shipment, seen.order, seq as i64 + 1, names, 3);
            tx.write_shipment_transition(&next).await.expect("follows");
            tx.commit().await.expect("commit");
        })
    };
    until_someone_waits_for_a_lock(&store).await;
    log.push("first moves and commits");
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
        log.events(),
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

/// An order locked by one transaction makes a second wait, then read the first's write.
#[tokio::test]
async fn lock_order_makes_a_second_transaction_wait_for_the_first() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let log = Log::default();

    let mut first = store.begin().await.expect("begin");
    let mut locked = first
        .lock_order(order.id)
        .await
        .expect("lock")
        .expect("exists");
    log.push("first locked");

    let second = {
        let store = store.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            log.push("second asks");
            let seen = tx
                .lock_order(order.id)
                .await
                .expect("lock")
                .expect("exists");
            log.push(format!("second locked version {}", seen.version));
            tx.rollback().await.expect("rollback");
            seen
        })
    };
    until_someone_waits_for_a_lock(&store).await;
    log.push("first commits");
    locked.state = State::Confirmed;
    assert!(first.update_order(&locked, at(1)).await.expect("update"));
    first.commit().await.expect("commit");

    let seen = second.await.expect("task");
    assert_eq!(
        log.events(),
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

/// Products locked for no key update do not hold up a new order of them.
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

/// Transactions that lock their products in id order never deadlock.
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

/// `lock_for_transition` reads what the transaction it waited for wrote.
#[tokio::test]
async fn lock_for_transition_reads_what_the_transaction_it_waited_for_wrote() {
    // It reads in the statement that takes the lock: when it waited for a transaction
    // that wrote a transition meanwhile, it still returns that transition's sequence
    // number and the order's new version, not what its snapshot saw.
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
    first
        .append_transition(&confirm_row(order.id, 1, 2))
        .await
        .expect("appended");
    first.commit().await.expect("commit");

    let (seen, reads) = waiting.await.expect("the second transaction ran");
    assert_eq!(seen.version, locked.0.version + 1);
    assert_eq!(seen.state, State::Confirmed);
    assert_eq!(reads.last_seq, 1, "the waited-for transition is seen");
    assert_eq!(reads.items.len(), 2);
}
