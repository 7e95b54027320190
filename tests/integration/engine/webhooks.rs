//! Processor webhooks through the inbox: confirmations that find the books in step or
//! in doubt, and the processor's own doings (a lapsed authorization, a chargeback, a
//! refund it could not pay out), each once however often it arrives.

use std::sync::Arc;

use order_core::clock::Clock as _;
use order_core::engine::CrashPoint;
use order_core::order::{Event, Guard, State};
use order_core::payment::{ProcessorEvent, ProcessorEventKind};
use order_core::{Actor, Command, FireError, OrderId, PaymentStatus};

use super::harness::{CUSTOMER, Shop};

/// An order in `state` and its payment's processor reference.
async fn paid_in(shop: &Shop, state: State) -> (OrderId, String, i64) {
    let id = shop.order_in(state).await;
    let payments = shop.store.payments(id).await.expect("readable");
    let payment = payments.last().expect("a payment");
    let reference = payment.processor_ref.clone().expect("a reference");
    (id, reference, payment.amount_cents)
}

fn event(reference: &str, sequence: u32, kind: ProcessorEventKind, amount: i64) -> ProcessorEvent {
    ProcessorEvent {
        external_id: format!("evt_{reference}_{sequence}"),
        reference: reference.to_owned(),
        kind,
        amount_cents: amount,
        refund_reference: None,
        occurred_at: chrono::Utc::now(),
        sequence,
    }
}

async fn receive(shop: &Shop, webhook: &ProcessorEvent) -> bool {
    shop.engine
        .receive_processor_event(webhook)
        .await
        .expect("kept")
}

#[tokio::test]
async fn confirmations_of_recorded_effects_are_in_step_and_kept_once() {
    let shop = Shop::memory().await;
    let (_, reference, amount) = paid_in(&shop, State::Paid).await;
    let authorized = event(&reference, 1, ProcessorEventKind::Authorized, amount);
    let captured = event(&reference, 2, ProcessorEventKind::Captured, amount);
    // Out of order and twice.
    assert!(receive(&shop, &captured).await);
    assert!(receive(&shop, &authorized).await);
    assert!(
        !receive(&shop, &captured).await,
        "a second delivery is dropped"
    );
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(
        (done.in_step, done.applied, done.reconciled),
        (2, 0, 0),
        "{done:?}"
    );
    let inbox = shop.store.inbox("processor").await.expect("readable");
    assert_eq!(inbox.len(), 2);
    assert!(
        inbox
            .iter()
            .all(|m| m.outcome.as_deref() == Some("in step"))
    );
    let again = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(again.in_step, 0, "processed messages are not handled again");
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_capture_confirmation_settles_a_capture_whose_transition_died() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    let reference = attempt.payment.processor_ref.clone().expect("a reference");
    let dying = shop.engine.clone().with_crash_points(Arc::new(|point| {
        if point == CrashPoint::Captured {
            panic!("killed after the capture");
        }
    }));
    let pay = Command::new(Event::Pay, Actor::customer(CUSTOMER));
    let joined = tokio::spawn(async move { dying.fire(id, pay).await }).await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    assert_eq!(shop.state(id).await, State::Confirmed);

    let amount = attempt.payment.amount_cents;
    receive(
        &shop,
        &event(&reference, 2, ProcessorEventKind::Captured, amount),
    )
    .await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.reconciled, 1, "{done:?}");
    assert_eq!(shop.state(id).await, State::Paid);
    assert_eq!(shop.payments.total_captured(), amount, "captured once");
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_lapsed_authorization_can_no_longer_pay() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    let reference = attempt.payment.processor_ref.clone().expect("a reference");
    let lapsed = event(&reference, 2, ProcessorEventKind::AuthorizationExpired, 0);
    receive(&shop, &lapsed).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.applied, 1, "{done:?}");
    let payments = shop.store.payments(id).await.expect("readable");
    assert_eq!(payments[0].state, "voided");
    assert_eq!(
        payments[0].failure_code.as_deref(),
        Some("authorization_expired")
    );
    let pay = Command::new(Event::Pay, Actor::customer(CUSTOMER));
    let refused = shop.engine.fire(id, pay).await;
    assert!(
        matches!(
            refused,
            Err(FireError::GuardFailed {
                guard: Guard::PaymentAuthorized,
                ..
            })
        ),
        "{refused:?}"
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_expiry_after_the_capture_is_stale() {
    let shop = Shop::memory().await;
    let (id, reference, _) = paid_in(&shop, State::Paid).await;
    receive(
        &shop,
        &event(&reference, 3, ProcessorEventKind::AuthorizationExpired, 0),
    )
    .await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.stale, 1, "{done:?}");
    assert_eq!(shop.state(id).await, State::Paid);
    let payments = shop.store.payments(id).await.expect("readable");
    assert_eq!(payments[0].state, "captured");
}

#[tokio::test]
async fn a_chargeback_is_recorded_up_to_what_was_captured() {
    let shop = Shop::memory().await;
    let (id, reference, amount) = paid_in(&shop, State::Delivered).await;
    let part = event(&reference, 3, ProcessorEventKind::Chargeback, 1_000);
    receive(&shop, &part).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.applied, 1, "{done:?}");
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::PartiallyRefunded);
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (refunds[0].amount_cents, refunds[0].reason.as_deref()),
        (1_000, Some("chargeback"))
    );
    // More than is left is refused by the books, and recorded as refused.
    let too_much = event(&reference, 4, ProcessorEventKind::Chargeback, amount);
    receive(&shop, &too_much).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.refused, 1, "{done:?}");
    let inbox = shop.store.inbox("processor").await.expect("readable");
    let outcome = inbox
        .last()
        .and_then(|m| m.outcome.clone())
        .unwrap_or_default();
    assert!(outcome.starts_with("refused:"), "{outcome}");
    assert_eq!(shop.store.refunds(id).await.expect("readable").len(), 1);
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_reversed_refund_is_the_shops_money_again() {
    let shop = Shop::memory().await;
    let (id, reference, amount) = paid_in(&shop, State::Refunded).await;
    let refunds = shop.store.refunds(id).await.expect("readable");
    let refund_ref = refunds[0]
        .processor_ref
        .clone()
        .expect("a refund reference");
    let reversed = ProcessorEvent {
        refund_reference: Some(refund_ref.clone()),
        ..event(&reference, 4, ProcessorEventKind::RefundReversed, amount)
    };
    receive(&shop, &reversed).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.applied, 1, "{done:?}");
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(refunds[0].state, "reversed");
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Captured);
    // The same event again, under another delivery id, finds it recorded.
    let resent = ProcessorEvent {
        external_id: "evt_resent".into(),
        ..reversed
    };
    receive(&shop, &resent).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.in_step, 1, "{done:?}");
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_event_for_an_unknown_payment_waits_a_day_then_is_refused() {
    let shop = Shop::memory().await;
    let unknown = event("pay_nope", 1, ProcessorEventKind::Captured, 5);
    receive(&shop, &unknown).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!((done.waiting, done.refused), (1, 0), "{done:?}");
    shop.clock.advance(chrono::TimeDelta::days(1));
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!((done.waiting, done.refused), (0, 1), "{done:?}");
}

#[tokio::test]
async fn the_webhook_of_an_authorization_whose_answer_was_lost_waits_for_reconciliation() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let dying = shop.engine.clone().with_crash_points(Arc::new(|point| {
        if point == CrashPoint::Authorized {
            panic!("killed after the authorization");
        }
    }));
    let joined = tokio::spawn(async move { dying.authorize_payment(id).await }).await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    // The processor's own webhook says so, before the shop knows the reference.
    let webhooks = shop.payments.webhooks_until(shop.clock.now());
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert_eq!(webhooks[0].kind, ProcessorEventKind::Authorized);
    receive(&shop, &webhooks[0]).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.waiting, 1, "{done:?}");
    let settled = shop.engine.reconcile_payments().await.expect("runs");
    assert_eq!(settled.authorizations_settled, 1);
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!((done.in_step, done.waiting), (1, 0), "{done:?}");
    shop.assert_verified().await;
}

/// A split of a paid order shares its processor reference between the parent's and
/// the child's payments: the processor's events for that reference are matched
/// against both, so a refund of the child is found in step, not recorded again on the
/// parent, and its reversal is found on the child.
#[tokio::test]
async fn events_on_a_reference_a_split_shares_find_the_childs_refund() {
    let shop = Shop::memory().await;
    let (parent, reference, _) = paid_in(&shop, State::Paid).await;
    let items = shop.store.items(parent).await.expect("readable");
    let child = shop
        .engine
        .split(parent, &[items[1].id])
        .await
        .expect("split in paid");
    let refund = Command::new(Event::Refund, Actor::customer(CUSTOMER));
    shop.engine
        .fire(child.id, refund)
        .await
        .expect("the child is refunded");
    let refunds = shop.store.refunds(child.id).await.expect("readable");
    let refund_ref = refunds[0]
        .processor_ref
        .clone()
        .expect("a refund reference");
    let refunded = ProcessorEvent {
        refund_reference: Some(refund_ref.clone()),
        ..event(
            &reference,
            3,
            ProcessorEventKind::Refunded,
            child.total_cents,
        )
    };
    receive(&shop, &refunded).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!((done.in_step, done.applied), (1, 0), "{done:?}");
    let on_parent = shop.store.refunds(parent).await.expect("readable");
    assert!(
        on_parent.is_empty(),
        "recorded again on the parent: {on_parent:?}"
    );

    let reversed = ProcessorEvent {
        refund_reference: Some(refund_ref),
        ..event(
            &reference,
            4,
            ProcessorEventKind::RefundReversed,
            child.total_cents,
        )
    };
    receive(&shop, &reversed).await;
    let done = shop.engine.process_processor_inbox().await.expect("runs");
    assert_eq!(done.applied, 1, "{done:?}");
    let refunds = shop.store.refunds(child.id).await.expect("readable");
    assert_eq!(refunds[0].state, "reversed");
    shop.assert_verified().await;
}
