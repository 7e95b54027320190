//! Payments run `payment.fsm` through the engine: staff refunds in parts and in full,
//! the actor rules, each payment's own audit trail and notifications, an authorization
//! that lapsed before its capture, the `retry` and `reverse_refund` overrides, and
//! `verify` on a payment whose row no longer matches its trail.

use order_core::engine::machine::Refusal;
use order_core::engine::{PaymentCommand, PaymentFireError, PaymentOutcome};
use order_core::order::State as OrderState;
use order_core::payment::machine::{ActorKind as By, Event, Guard, Reason, State};
use order_core::payment::{Call, PaymentError, PaymentProcessor as _};
use order_core::{
    Actor, Command, EntityTransition, FireError, Order, OrderId, OutboxMessage, Payment,
    PaymentStatus, Refund,
};

use super::harness::{ADMIN, CUSTOMER, SUPPORT, Shop};

/// Everything a refused payment command must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    order: Order,
    payments: Vec<Payment>,
    refunds: Vec<Refund>,
    trail: Vec<EntityTransition>,
    messages: Vec<OutboxMessage>,
}

async fn snapshot(shop: &Shop, id: OrderId, payment: &Payment) -> Snapshot {
    let store = &shop.store;
    let order = store.order(id).await.expect("readable");
    Snapshot {
        order: order.expect("the order exists"),
        payments: store.payments(id).await.expect("readable"),
        refunds: store.refunds(id).await.expect("readable"),
        trail: trail(shop, payment).await,
        messages: store.messages(id).await.expect("readable"),
    }
}

async fn trail(shop: &Shop, payment: &Payment) -> Vec<EntityTransition> {
    let trail = shop.store.entity_trail("Payment", payment.id.0).await;
    trail.expect("readable")
}

/// The order's latest payment, as stored now.
async fn latest(shop: &Shop, id: OrderId) -> Payment {
    let payments = shop.store.payments(id).await.expect("readable");
    let latest = payments.into_iter().max_by_key(|p| p.attempt_no);
    latest.expect("the order has a payment")
}

/// An order in `paid` and its captured payment.
async fn paid(shop: &Shop) -> (OrderId, Payment) {
    let id = shop.order_in(OrderState::Paid).await;
    let payment = latest(shop, id).await;
    assert_eq!(payment.state, "captured");
    (id, payment)
}

async fn payment_status(shop: &Shop, id: OrderId) -> PaymentStatus {
    let order = shop.store.order(id).await.expect("readable");
    order.expect("the order exists").payment_status
}

/// What the processor's books say was captured and refunded of `payment`.
async fn books(shop: &Shop, payment: &Payment) -> (i64, i64) {
    let reference = payment.processor_ref.as_deref().expect("a reference");
    let balance = shop.payments.balance(reference).await;
    let balance = balance.expect("the processor knows the payment");
    (balance.captured_cents, balance.refunded_cents)
}

/// How many calls of `kind` the processor received.
fn calls(shop: &Shop, kind: Call) -> usize {
    shop.payments
        .calls()
        .iter()
        .filter(|(call, _)| *call == kind)
        .count()
}

/// A goodwill refund of `cents` by support.
fn refund(cents: i64) -> PaymentCommand {
    PaymentCommand::new(Event::Refund, By::Support)
        .by(SUPPORT)
        .reason(Reason::Goodwill)
        .amount(cents)
}

async fn fire(
    shop: &Shop,
    id: OrderId,
    payment: &Payment,
    command: PaymentCommand,
) -> PaymentOutcome {
    let result = shop.engine.fire_payment(id, payment.id, &command).await;
    result.unwrap_or_else(|err| panic!("{:?} refused: {err}", command.event))
}

/// Fires `command`, which must be refused and leave everything as it was; the error.
async fn refused(
    shop: &Shop,
    id: OrderId,
    payment: &Payment,
    command: PaymentCommand,
) -> PaymentFireError {
    let before = snapshot(shop, id, payment).await;
    let result = shop.engine.fire_payment(id, payment.id, &command).await;
    let err = match result {
        Ok(outcome) => panic!("{:?} went through: {outcome:?}", command.event),
        Err(err) => err,
    };
    let after = snapshot(shop, id, payment).await;
    assert_eq!(after, before, "the refusal ({err}) left a trace");
    err
}

/// Two partial refunds by support make a full one; a third is no transition of `refunded`.
#[tokio::test]
async fn partial_refunds_add_up_to_a_full_refund_after_which_nothing_more_is_refunded() {
    let shop = Shop::memory().await;
    let (id, payment) = paid(&shop).await;
    let total = payment.amount_cents;
    assert_eq!(books(&shop, &payment).await, (total, 0));

    let first = fire(&shop, id, &payment, refund(1_000)).await;
    assert_eq!(
        (first.from, first.to),
        (State::Captured, State::PartiallyRefunded)
    );
    assert_eq!(latest(&shop, id).await.state, "partially_refunded");
    assert_eq!(
        payment_status(&shop, id).await,
        PaymentStatus::PartiallyRefunded
    );
    let refunds = shop.store.refunds(id).await.expect("readable");
    let amounts: Vec<(i64, &str)> = refunds
        .iter()
        .map(|r| (r.amount_cents, r.state.as_str()))
        .collect();
    assert_eq!(amounts, [(1_000, "succeeded")]);
    assert_eq!(refunds[0].payment, payment.id);
    assert_eq!(refunds[0].reason.as_deref(), Some("goodwill"));
    assert_eq!(books(&shop, &payment).await, (total, 1_000));

    // Exactly the rest: the payment is refunded, and the order's rollup follows.
    let rest = fire(&shop, id, &payment, refund(total - 1_000)).await;
    assert_eq!(
        (rest.from, rest.to),
        (State::PartiallyRefunded, State::Refunded)
    );
    assert_eq!(latest(&shop, id).await.state, "refunded");
    assert_eq!(payment_status(&shop, id).await, PaymentStatus::Refunded);
    let refunds = shop.store.refunds(id).await.expect("readable");
    let amounts: Vec<i64> = refunds.iter().map(|r| r.amount_cents).collect();
    assert_eq!(amounts, [1_000, total - 1_000]);
    assert_eq!(books(&shop, &payment).await, (total, total));

    // `refunded` is terminal: a third refund is not a transition at all.
    let refund_calls = calls(&shop, Call::Refund);
    let err = refused(&shop, id, &payment, refund(1)).await;
    assert!(
        matches!(
            err,
            PaymentFireError::Refused(Refusal::InvalidTransition {
                state: State::Refunded,
                event: Event::Refund,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(calls(&shop, Call::Refund), refund_calls);
    assert_eq!(books(&shop, &payment).await, (total, total));
    shop.assert_verified().await;
}

/// A refund of more than is left fails the first declaration's guard and asks nobody.
#[tokio::test]
async fn a_refund_of_more_than_is_left_is_refused_before_the_processor_is_asked() {
    let shop = Shop::memory().await;
    let (id, payment) = paid(&shop).await;
    let total = payment.amount_cents;
    fire(&shop, id, &payment, refund(1_000)).await;
    let refund_calls = calls(&shop, Call::Refund);

    // Neither declaration admits it; the first listed one (into `refunded`) answers.
    let err = refused(&shop, id, &payment, refund(total)).await;
    assert!(
        matches!(
            err,
            PaymentFireError::Refused(Refusal::GuardFailed {
                event: Event::Refund,
                guard: Guard::RefundCoversRemainingAmount,
                value: false,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        calls(&shop, Call::Refund),
        refund_calls,
        "no processor call"
    );
    assert_eq!(books(&shop, &payment).await, (total, 1_000));
    assert_eq!(latest(&shop, id).await.state, "partially_refunded");
    shop.assert_verified().await;
}

/// Staff give a reason, name themselves and hold their role; the processor never captures.
#[tokio::test]
async fn staff_and_the_processor_are_held_to_the_actor_rules() {
    let shop = Shop::memory().await;
    let (id, payment) = paid(&shop).await;
    let bare = PaymentCommand::new(Event::Refund, By::Support)
        .by(SUPPORT)
        .amount(1_000);
    let err = refused(&shop, id, &payment, bare).await;
    assert!(
        matches!(
            err,
            PaymentFireError::Refused(Refusal::ReasonRequired {
                event: Event::Refund,
                actor: By::Support,
            })
        ),
        "{err:?}"
    );
    let anonymous = PaymentCommand::new(Event::Refund, By::Support)
        .reason(Reason::Goodwill)
        .amount(1_000);
    let err = refused(&shop, id, &payment, anonymous).await;
    assert!(
        matches!(
            err,
            PaymentFireError::MissingPrincipal { role: By::Support }
        ),
        "{err:?}"
    );
    // Sam is support, not admin.
    let impostor = PaymentCommand::new(Event::Refund, By::Admin)
        .by(SUPPORT)
        .reason(Reason::Goodwill)
        .amount(1_000);
    let err = refused(&shop, id, &payment, impostor).await;
    assert!(
        matches!(
            &err,
            PaymentFireError::MissingRole { principal, role: By::Admin } if principal == SUPPORT
        ),
        "{err:?}"
    );
    assert_eq!(calls(&shop, Call::Refund), 0);

    // Only the system and support capture an authorization, never the processor.
    let id = shop.order_in(OrderState::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "authorized");
    let capture = PaymentCommand::new(Event::Capture, By::Processor);
    let err = refused(&shop, id, &attempt.payment, capture).await;
    match err {
        PaymentFireError::Refused(Refusal::ActorNotAllowed {
            state: State::Authorized,
            event: Event::Capture,
            actor: By::Processor,
            allowed,
        }) => assert_eq!(allowed, [By::System, By::Support]),
        other => panic!("{other:?}"),
    }
    assert_eq!(calls(&shop, Call::Capture), 1, "only the first order's pay");
    shop.assert_verified().await;
}

/// Authorize, capture and a partial refund are rows 1 to 3 of the payment's own trail.
#[tokio::test]
async fn a_payment_keeps_a_trail_of_its_own_and_notifies_on_its_order() {
    let shop = Shop::memory().await;
    let (id, payment) = paid(&shop).await;
    fire(&shop, id, &payment, refund(500)).await;

    let trail = trail(&shop, &payment).await;
    let steps: Vec<(i64, &str, &str, &str, &str)> = trail
        .iter()
        .map(|r| {
            let (event, from, to) = (r.event.as_str(), r.from.as_str(), r.to.as_str());
            (r.seq, event, r.actor_kind.as_str(), from, to)
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "authorize", "processor", "initiated", "authorized"),
            (2, "capture", "system", "authorized", "captured"),
            (3, "refund", "support", "captured", "partially_refunded"),
        ]
    );
    assert!(trail.iter().all(|r| r.machine == "Payment"
        && r.entity == payment.id.0
        && r.order == id
        && !r.machine_hash.is_empty()
        && !r.is_override));
    let refund_row = &trail[2];
    assert_eq!(refund_row.actor_id.as_deref(), Some(SUPPORT));
    assert_eq!(refund_row.reason.as_deref(), Some("goodwill"));

    // The payment's notifications are on its order's outbox, keyed by the payment.
    let messages = shop.store.messages(id).await.expect("readable");
    let prefix = format!("payment:{}:", payment.id);
    let notified: Vec<&str> = messages
        .iter()
        .filter(|m| m.dedupe_key.starts_with(&prefix))
        .map(|m| m.kind.as_str())
        .collect();
    assert_eq!(
        notified,
        [
            "payment_authorized",
            "payment_captured",
            "payment_partially_refunded"
        ]
    );
    assert!(messages.iter().all(|m| m.aggregate == id));
    shop.assert_verified().await;
}

/// An authorization older than its lifetime fails the order's `pay` and captures nothing.
#[tokio::test]
async fn an_authorization_older_than_its_lifetime_is_not_captured() {
    let shop = Shop::memory().await;
    let id = shop.order_in(OrderState::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "authorized");
    let lifetime = shop.engine.config().authorization_lifetime;
    shop.clock.advance(lifetime + chrono::TimeDelta::hours(1));

    let pay = Command::new(order_core::order::Event::Pay, Actor::customer(CUSTOMER));
    let result = shop.engine.fire(id, pay).await;
    match &result {
        Err(FireError::ActionFailed { action, message }) => {
            assert_eq!(action, "capture_payment");
            assert!(message.contains("authorization_valid"), "{message}");
        }
        other => panic!("expected capture_payment to fail: {other:?}"),
    }
    assert_eq!(shop.state(id).await, OrderState::Confirmed);
    let payment = latest(&shop, id).await;
    assert_eq!(payment.state, "authorized");
    assert_eq!(
        trail(&shop, &payment).await.len(),
        1,
        "only the authorization"
    );
    assert_eq!(books(&shop, &payment).await, (0, 0));
    assert_eq!(calls(&shop, Call::Capture), 0);
    assert_eq!(shop.payments.total_captured(), 0);
    shop.assert_verified().await;
}

/// The `retry` override by support, for a customer's request.
fn retry() -> PaymentCommand {
    PaymentCommand::new(Event::Retry, By::Support)
        .by(SUPPORT)
        .reason(Reason::CustomerRequest)
}

/// Asks the processor to authorize the order's waiting payment, which it declines.
async fn declined(shop: &Shop, id: OrderId) -> Payment {
    let code = "card_declined".to_owned();
    shop.payments
        .fail_next(Call::Authorize, PaymentError::Declined { code });
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "declined");
    assert_eq!(attempt.payment.state, "failed");
    attempt.payment
}

/// Support's `retry` sends a declined payment back to `initiated` under a fresh key.
#[tokio::test]
async fn a_declined_payment_is_retried_under_a_fresh_key_and_then_authorized() {
    let shop = Shop::memory().await;
    let id = shop.order_in(OrderState::Confirmed).await;
    let failed = declined(&shop, id).await;
    assert_eq!(shop.state(id).await, OrderState::Confirmed);

    let outcome = fire(&shop, id, &failed, retry()).await;
    assert_eq!(
        (outcome.from, outcome.to),
        (State::Failed, State::Initiated)
    );
    let retried = latest(&shop, id).await;
    assert_eq!(retried.id, failed.id, "the same payment, not a new one");
    assert_eq!(retried.state, "initiated");
    assert_ne!(retried.idempotency_key, failed.idempotency_key);
    let override_row = trail(&shop, &failed).await.pop().expect("a row");
    assert!(override_row.is_override);
    assert_eq!(override_row.reason.as_deref(), Some("customer_request"));

    // The processor is asked again, under the new key, and says yes this time.
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "authorized");
    assert_eq!(attempt.payment.id, failed.id);
    let payments = shop.store.payments(id).await.expect("readable");
    let states: Vec<(i64, &str)> = payments
        .iter()
        .map(|p| (p.id.0, p.state.as_str()))
        .collect();
    assert_eq!(states, [(failed.id.0, "authorized")]);
    let keys: Vec<String> = shop.payments.calls().into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        keys,
        [
            failed.idempotency_key.clone(),
            retried.idempotency_key.clone()
        ]
    );
    assert_eq!(payment_status(&shop, id).await, PaymentStatus::Authorized);
    shop.assert_verified().await;
}

/// After `max_payment_attempts` declines, `retry` fails `attempts_remaining`.
#[tokio::test]
async fn retry_is_refused_once_the_payments_attempts_are_used_up() {
    let shop = Shop::memory().await;
    let id = shop.order_in(OrderState::Confirmed).await;
    let max = shop.engine.config().max_payment_attempts;
    let mut failed = declined(&shop, id).await;
    for _ in 1..max {
        fire(&shop, id, &failed, retry()).await;
        failed = declined(&shop, id).await;
    }
    let fails = trail(&shop, &failed).await;
    let fails = fails.iter().filter(|r| r.event == "fail").count();
    assert_eq!(i64::try_from(fails).expect("small"), max);

    let err = refused(&shop, id, &failed, retry()).await;
    assert!(
        matches!(
            err,
            PaymentFireError::Refused(Refusal::GuardFailed {
                event: Event::Retry,
                guard: Guard::AttemptsRemaining,
                value: false,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(latest(&shop, id).await.state, "failed");
    // The order counts the retried payment's failures too: the last one cancelled it.
    assert_eq!(shop.state(id).await, OrderState::Cancelled);
    let history = shop.store.history(id).await.expect("readable");
    let last = history.last().expect("rows");
    assert_eq!(last.reason, Some(order_core::order::Reason::PaymentFailed));
    shop.assert_verified().await;
}

/// An admin's `reverse_refund` needs a refund the processor reversed, then recaptures.
#[tokio::test]
async fn an_admin_reinstates_a_payment_whose_refund_the_processor_reversed() {
    let shop = Shop::memory().await;
    let (id, payment) = paid(&shop).await;
    let total = payment.amount_cents;
    let full = PaymentCommand::new(Event::Refund, By::Support)
        .by(SUPPORT)
        .reason(Reason::CustomerRequest);
    let outcome = fire(&shop, id, &payment, full).await;
    assert_eq!(outcome.to, State::Refunded);
    assert_eq!(books(&shop, &payment).await, (total, total));

    let reverse = PaymentCommand::new(Event::ReverseRefund, By::Admin)
        .by(ADMIN)
        .reason(Reason::ProcessorError);
    // Nothing was reversed yet: the refund stands.
    let err = refused(&shop, id, &payment, reverse.clone()).await;
    assert!(
        matches!(
            err,
            PaymentFireError::Refused(Refusal::GuardFailed {
                event: Event::ReverseRefund,
                guard: Guard::RefundReversedByProcessor,
                value: false,
                ..
            })
        ),
        "{err:?}"
    );

    // The processor could not pay the refund out, and the shop records it.
    let refunds = shop.store.refunds(id).await.expect("readable");
    let refund_ref = refunds[0]
        .processor_ref
        .clone()
        .expect("a refund reference");
    shop.payments
        .reverse_refund(&refund_ref)
        .expect("the processor reverses it");
    shop.engine
        .refund_reversed(id)
        .await
        .expect("the shop records it");
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(refunds[0].state, "reversed");
    assert_eq!(
        latest(&shop, id).await.state,
        "refunded",
        "until an admin says so"
    );

    let outcome = fire(&shop, id, &payment, reverse).await;
    assert_eq!(
        (outcome.from, outcome.to),
        (State::Refunded, State::Captured)
    );
    assert_eq!(latest(&shop, id).await.state, "captured");
    assert_eq!(payment_status(&shop, id).await, PaymentStatus::Captured);
    assert_eq!(books(&shop, &payment).await, (total, 0));
    let last = trail(&shop, &payment).await.pop().expect("a row");
    assert!(last.is_override);
    assert_eq!(
        (last.actor_kind.as_str(), last.actor_id.as_deref()),
        ("admin", Some(ADMIN))
    );
    let messages = shop.store.messages(id).await.expect("readable");
    assert!(messages.iter().any(|m| m.kind == "refund_reversed"));
    shop.assert_verified().await;
}

/// Runs one statement on the shop's database behind the store's back, the way the
/// conformance suite breaks stored data on purpose.
async fn tamper(shop: &Shop, sql: &str) {
    let url = shop.url.as_deref().expect("a shared database has a URL");
    let done = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("it opens");
        let done = sqlx::query(sql).execute(&pool).await.map(drop);
        pool.close().await;
        done
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("it opens");
        let done = sqlx::query(sql).execute(&pool).await.map(drop);
        pool.close().await;
        done
    };
    done.unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// `verify` reports a payment row whose state is not where its trail ends.
#[tokio::test]
async fn verify_finds_a_payment_whose_row_left_its_trail() {
    let shop = Shop::file().await;
    let (id, tampered) = paid(&shop).await;
    fire(&shop, id, &tampered, refund(1_000)).await;
    // Another order's payment, left alone, is not reported.
    paid(&shop).await;
    shop.assert_verified().await;

    let p = tampered.id.0;
    tamper(
        &shop,
        &format!("UPDATE payments SET state = 'refunded' WHERE id = {p}"),
    )
    .await;
    let findings = shop.store.verify().await.expect("verify runs");
    let checks: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(checks, ["payment_matches_trail"], "{findings:#?}");
    let detail = &findings[0].detail;
    let named = detail.contains(&format!("payment {p}")) && detail.contains("partially_refunded");
    assert!(named, "{findings:?}");
}
