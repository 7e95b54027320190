//! A process that dies between the processor's answer and the commit leaves the
//! shop's books and the processor's apart; reconciliation brings them together. The
//! crash is a panic at the engine's crash point inside a task of its own: nothing after
//! that point runs, no undo either, exactly as if the process had been killed there,
//! while the simulated processor keeps its books.

use std::sync::Arc;

use order_core::engine::CrashPoint;
use order_core::order::{Event, State};
use order_core::{Actor, Command, Engine, OrderId, PaymentStatus};

use super::harness::{CUSTOMER, Shop};

/// Runs `run` on an engine that dies at `point`; asserts that it died.
async fn killed_at<F, Fut>(shop: &Shop, point: CrashPoint, run: F)
where
    F: FnOnce(Engine) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let dying = shop
        .engine
        .clone()
        .with_crash_points(Arc::new(move |reached| {
            if reached == point {
                panic!("killed at {}", reached.as_str());
            }
        }));
    let task = tokio::spawn(run(dying));
    let joined = task.await;
    assert!(
        joined.as_ref().is_err_and(|e| e.is_panic()),
        "the engine did not reach {point:?}"
    );
}

async fn authorized(shop: &Shop) -> (OrderId, i64) {
    let id = shop.order_in(State::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "authorized");
    let total = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists")
        .total_cents;
    (id, total)
}

async fn payment_states(shop: &Shop, id: OrderId) -> Vec<String> {
    let payments = shop.store.payments(id).await.expect("readable");
    payments.into_iter().map(|p| p.state).collect()
}

fn pay() -> Command {
    Command::new(Event::Pay, Actor::customer(CUSTOMER))
}

#[tokio::test]
async fn a_capture_whose_transition_died_is_completed() {
    let shop = Shop::memory().await;
    let (id, total) = authorized(&shop).await;
    killed_at(&shop, CrashPoint::Captured, move |engine| async move {
        engine.fire(id, pay()).await
    })
    .await;
    // Apart: the processor captured, the shop still waits for the money.
    assert_eq!(shop.payments.total_captured(), total);
    assert_eq!(shop.state(id).await, State::Confirmed);
    assert_eq!(payment_states(&shop, id).await, ["authorized"]);

    let done = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(
        (done.captures_completed, done.captures_refunded),
        (1, 0),
        "{done:?}"
    );
    assert_eq!(shop.state(id).await, State::Paid);
    assert_eq!(payment_states(&shop, id).await, ["captured"]);
    assert_eq!(shop.payments.total_captured(), total, "captured once");
    assert_eq!(shop.payments.total_refunded(), 0);
    // Together again: a second run finds nothing to do.
    let again = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(
        (
            again.captures_completed,
            again.captures_refunded,
            again.authorizations_settled
        ),
        (0, 0, 0)
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_capture_in_doubt_blocks_a_cancel_until_it_is_settled() {
    let shop = Shop::memory().await;
    let (id, total) = authorized(&shop).await;
    killed_at(&shop, CrashPoint::Captured, move |engine| async move {
        engine.fire(id, pay()).await
    })
    .await;
    // The processor will not release an authorization it captured: the customer cannot
    // cancel an order whose money it holds.
    let cancel = Command::new(Event::Cancel, Actor::customer(CUSTOMER));
    assert!(shop.engine.fire(id, cancel).await.is_err());
    assert_eq!(shop.state(id).await, State::Confirmed);
    let done = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(done.captures_completed, 1, "{done:?}");
    assert_eq!(shop.state(id).await, State::Paid);
    assert_eq!(shop.payments.total_captured(), total, "captured once");
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_capture_that_no_longer_pays_the_order_is_refunded() {
    let shop = Shop::memory().await;
    let (id, total) = authorized(&shop).await;
    killed_at(&shop, CrashPoint::Captured, move |engine| async move {
        engine.fire(id, pay()).await
    })
    .await;
    // Not knowing of the capture, the customer adds to the order: the authorization
    // no longer covers it, so `pay` cannot complete with the captured money.
    shop.engine
        .modify_items(id, &[("WIDGET", 5), ("GADGET", 1)])
        .await
        .expect("modified in confirmed");
    let done = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(
        (done.captures_completed, done.captures_refunded),
        (0, 1),
        "{done:?}"
    );
    assert_eq!(shop.state(id).await, State::Confirmed);
    assert_eq!(shop.payments.total_captured(), total);
    assert_eq!(
        shop.payments.total_refunded(),
        total,
        "the orphan capture went back"
    );
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Refunded);
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount_cents, total);
    // Settled: the next run leaves it.
    let again = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!((again.captures_completed, again.captures_refunded), (0, 0));
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_authorization_whose_answer_was_lost_is_settled() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    killed_at(&shop, CrashPoint::Authorized, move |engine| async move {
        engine.authorize_payment(id).await
    })
    .await;
    assert_eq!(payment_states(&shop, id).await, ["initiated"]);

    let done = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(done.authorizations_settled, 1, "{done:?}");
    assert_eq!(payment_states(&shop, id).await, ["authorized"]);
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Authorized);
    // The customer can pay now, once.
    shop.engine.fire(id, pay()).await.expect("paid");
    assert_eq!(shop.payments.total_captured(), order.total_cents);
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_authorization_for_an_order_cancelled_meanwhile_is_released() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    killed_at(&shop, CrashPoint::Authorized, move |engine| async move {
        engine.authorize_payment(id).await
    })
    .await;
    let cancel = Command::new(Event::Cancel, Actor::customer(CUSTOMER));
    shop.engine.fire(id, cancel).await.expect("cancelled");
    let done = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(
        (done.authorizations_settled, done.authorizations_voided),
        (1, 1),
        "{done:?}"
    );
    assert_eq!(payment_states(&shop, id).await, ["voided"]);
    assert_eq!(shop.payments.total_captured(), 0);
    shop.assert_verified().await;
}

#[tokio::test]
async fn books_in_step_need_nothing() {
    let shop = Shop::memory().await;
    for state in [
        State::Confirmed,
        State::Paid,
        State::Cancelled,
        State::Refunded,
    ] {
        shop.order_in(state).await;
    }
    // An authorization released by a cancel is compared with the processor's books.
    let (released, _) = authorized(&shop).await;
    let cancel = Command::new(Event::Cancel, Actor::customer(CUSTOMER));
    shop.engine.fire(released, cancel).await.expect("cancelled");
    let done = shop.engine.reconcile_payments().await.expect("runs");
    let changed = (
        done.authorizations_settled,
        done.authorizations_voided,
        done.captures_completed,
        done.captures_refunded,
    );
    assert_eq!(changed, (0, 0, 0, 0), "{done:?}");
    assert_eq!(done.checked, 1, "the cancelled order's payment: {done:?}");
    shop.assert_verified().await;
}
