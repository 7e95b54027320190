//! The `allow` rules: operations permitted only in some states, each refused elsewhere
//! with a typed error that lists where it is allowed.

use order_core::engine::ShipmentLine;
use order_core::order::{Event, Operation, State};
use order_core::{Actor, OperationError, PaymentStatus};

use super::harness::{CUSTOMER, Shop};

async fn stock(shop: &Shop, sku: &str) -> (i64, i64) {
    let product = shop
        .store
        .product(sku)
        .await
        .expect("readable")
        .expect("exists");
    (product.on_hand, product.reserved)
}

#[tokio::test]
async fn each_operation_is_refused_outside_its_states() {
    let shop = Shop::memory().await;
    for state in State::ALL {
        let id = shop.order_in(state).await;
        let modify = shop.engine.modify_items(id, &[("WIDGET", 1)]).await;
        let address = shop.engine.change_address(id, "1 New Road").await;
        let note = shop.engine.add_note(id, "sam", "called the customer").await;
        let items = shop.store.items(id).await.expect("readable");
        let split = shop.engine.split(id, &[items[0].id]).await;
        let line = ShipmentLine {
            item: items[0].id,
            quantity: 1,
        };
        let shipment = shop.engine.add_shipment(id, &[line], "dhl", None).await;
        for (operation, refused) in [
            (Operation::ModifyItems, modify.as_ref().err()),
            (Operation::ChangeAddress, address.as_ref().err()),
            (Operation::AddNote, note.as_ref().err()),
            (Operation::Split, split.as_ref().err()),
            (Operation::AddShipment, shipment.as_ref().err()),
        ] {
            match refused {
                Some(OperationError::NotAllowed {
                    operation: op,
                    state: at,
                    allowed_in,
                }) => {
                    assert!(!state.allows(operation), "{operation} refused in {state}");
                    assert_eq!((*op, *at), (operation, state));
                    let expected: Vec<State> = State::ALL
                        .into_iter()
                        .filter(|s| s.allows(operation))
                        .collect();
                    assert_eq!(allowed_in, &expected);
                }
                // Allowed here; an operation may still refuse for its own reasons
                // (shipping from a shipped order has nothing left, say).
                Some(other) => assert!(state.allows(operation), "{operation} in {state}: {other}"),
                None => assert!(state.allows(operation), "{operation} ran in {state}"),
            }
        }
    }
    let err = shop
        .engine
        .change_address(shop.order_in(State::Shipped).await, "2 Late Lane")
        .await
        .expect_err("too late");
    assert_eq!(
        err.to_string(),
        "`change_address` is not allowed in `shipped`; it is allowed in: pending, confirmed, paid"
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn modifying_a_confirmed_order_moves_its_reservation() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 2));
    let order = shop
        .engine
        .modify_items(id, &[("WIDGET", 5), ("SCARCE", 1)])
        .await
        .expect("modified");
    assert_eq!(order.total_cents, 5 * 1_000 + 500);
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 5));
    assert_eq!(stock(&shop, "GADGET").await, (500, 0));
    assert_eq!(stock(&shop, "SCARCE").await, (1, 1));
    // Asking for more than there is changes nothing.
    let refused = shop.engine.modify_items(id, &[("SCARCE", 2)]).await;
    assert!(
        matches!(&refused, Err(OperationError::OutOfStock { sku, requested: 2, available: 1 }) if sku == "SCARCE"),
        "{refused:?}"
    );
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 5));
    assert_eq!(shop.store.items(id).await.expect("readable").len(), 2);
    let unknown = shop.engine.modify_items(id, &[("NOPE", 1)]).await;
    assert!(matches!(unknown, Err(OperationError::Invalid(_))));
    // A pending order holds nothing, so its lines change without touching stock.
    let pending = shop.order_in(State::Pending).await;
    shop.engine
        .modify_items(pending, &[("GADGET", 3)])
        .await
        .expect("modified");
    assert_eq!(stock(&shop, "GADGET").await, (500, 0));
    shop.fire(pending, Event::Confirm, Actor::system()).await;
    assert_eq!(stock(&shop, "GADGET").await, (500, 3));
    shop.assert_verified().await;
}

#[tokio::test]
async fn address_and_notes_are_kept() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Paid).await;
    shop.engine
        .change_address(id, "9 Elm Street, Berlin")
        .await
        .expect("changed");
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(
        order.shipping_address.as_deref(),
        Some("9 Elm Street, Berlin")
    );
    let delivered = shop.order_in(State::Delivered).await;
    shop.engine
        .add_note(delivered, "sam", "left with the neighbour")
        .await
        .expect("noted");
    shop.assert_verified().await;
}

#[tokio::test]
async fn splitting_moves_lines_and_their_reservations_into_a_child_order() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let items = shop.store.items(id).await.expect("readable");
    let gadget = items
        .iter()
        .find(|i| i.sku == "GADGET")
        .expect("a gadget line");
    let child = shop.engine.split(id, &[gadget.id]).await.expect("split");
    assert_eq!((child.state, child.parent), (State::Confirmed, Some(id)));
    assert_eq!(child.total_cents, 2_500);
    let parent = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(parent.total_cents, 2_000);
    assert_eq!(shop.store.items(child.id).await.expect("readable").len(), 1);
    // Stock held overall is unchanged; each order holds its own part.
    assert_eq!(stock(&shop, "GADGET").await, (500, 1));
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 2));
    // The child lives its own life: cancelling it releases only its gadget.
    shop.fire(child.id, Event::Cancel, Actor::customer(CUSTOMER))
        .await;
    assert_eq!(stock(&shop, "GADGET").await, (500, 0));
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 2));
    let all = shop
        .engine
        .split(
            id,
            &items
                .iter()
                .filter(|i| i.sku == "WIDGET")
                .map(|i| i.id)
                .collect::<Vec<_>>(),
        )
        .await;
    assert!(
        matches!(all, Err(OperationError::Invalid(_))),
        "a split keeps a line: {all:?}"
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn splitting_a_paid_order_divides_its_capture() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Paid).await;
    let items = shop.store.items(id).await.expect("readable");
    let gadget = items
        .iter()
        .find(|i| i.sku == "GADGET")
        .expect("a gadget line");
    let child = shop.engine.split(id, &[gadget.id]).await.expect("split");
    assert_eq!(child.payment_status, PaymentStatus::Captured);
    // Both payments' trails record the split: the parent's gives the child's total
    // away, the child's starts out holding it under the same reference.
    let parent_payment = shop.store.payments(id).await.expect("readable")[0].clone();
    let child_payment = shop.store.payments(child.id).await.expect("readable")[0].clone();
    assert_eq!(
        (parent_payment.amount_cents, child_payment.amount_cents),
        (4_500 - 2_500, 2_500)
    );
    assert_eq!(child_payment.processor_ref, parent_payment.processor_ref);
    let last_event = |trail: Vec<order_core::EntityTransition>| {
        let row = trail.last().expect("a trail").clone();
        (row.event, row.from, row.to)
    };
    let parent_trail = shop
        .store
        .entity_trail("Payment", parent_payment.id.0)
        .await;
    let child_trail = shop.store.entity_trail("Payment", child_payment.id.0).await;
    assert_eq!(
        last_event(parent_trail.expect("readable")),
        ("split_off".into(), "captured".into(), "captured".into())
    );
    assert_eq!(
        last_event(child_trail.expect("readable")),
        ("allocate".into(), "initiated".into(), "captured".into())
    );
    // Refunding the child gives back its part only, and never more than captured.
    shop.fire(child.id, Event::Refund, Actor::customer(CUSTOMER))
        .await;
    assert_eq!(shop.payments.total_refunded(), 2_500);
    shop.fire(id, Event::Refund, Actor::customer(CUSTOMER))
        .await;
    assert_eq!(
        shop.payments.total_refunded(),
        shop.payments.total_captured()
    );
    shop.assert_verified().await;
}
