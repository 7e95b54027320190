//! Failures injected at every step of the pipeline that can fail: each leaves no trace
//! but its `transition_attempts` row and, where money moved, the compensation.
//! The faults come from `FaultyStore` (`faulty.rs`), which fails a chosen method once.

use order_core::order::{ActorKind, Event, Guard, Reason, State};
use order_core::payment::{Call, PaymentError, PaymentProcessor};
use order_core::{
    Attempt, Command, FireError, Order, OrderId, OutboxMessage, Outcome, Payment, PaymentStatus,
    Product, ProductId, Refund, Shipment, TransitionRecord,
};

use super::faulty::faulty_shop;
use super::harness::Shop;

/// Everything a failed transition must leave as it was (attempts are counted apart).
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    order: Order,
    history: Vec<TransitionRecord>,
    messages: Vec<OutboxMessage>,
    products: Vec<Product>,
    /// What the order holds reserved, from the ledger.
    held: Vec<(ProductId, i64)>,
    payments: Vec<Payment>,
    refunds: Vec<Refund>,
    shipments: Vec<Shipment>,
}

async fn snapshot(shop: &Shop, id: OrderId) -> Snapshot {
    let store = &shop.store;
    let mut tx = store.begin().await.expect("a transaction");
    let held = tx.reserved_by(id).await.expect("the ledger is readable");
    tx.rollback().await.expect("rolled back");
    let order = store.order(id).await.expect("readable");
    Snapshot {
        order: order.expect("the order exists"),
        history: store.history(id).await.expect("readable"),
        messages: store.messages(id).await.expect("readable"),
        products: store.products().await.expect("readable"),
        held,
        payments: store.payments(id).await.expect("readable"),
        refunds: store.refunds(id).await.expect("readable"),
        shipments: store.shipments(id).await.expect("readable"),
    }
}

/// What a compensated capture leaves: the payment marked refunded by the undo, which
/// wrote the order's rollup (one version) and nothing else.
/// The data after a failed `pay` whose capture was given back: the undo recorded the
/// capture and the compensation its refund (two writes of the order, each with its
/// payment transition and notification), under a key derived from the capture's.
fn compensated(before: &Snapshot, after: &Snapshot) -> Snapshot {
    let mut expected = before.clone();
    expected.order.version += 2;
    expected.order.payment_status = PaymentStatus::Refunded;
    expected.order.updated_at = after.order.updated_at;
    let payment = expected.payments.last_mut().expect("a payment");
    payment.state = "refunded".to_owned();
    let seq = before.history.len() + 1;
    let key = format!(
        "order-{}-t{seq}-capture-{}-undo",
        before.order.id, payment.id
    );
    expected.refunds.push(Refund {
        order: before.order.id,
        payment: payment.id,
        amount_cents: before.order.total_cents,
        state: "succeeded".to_owned(),
        reason: Some("processor_error".to_owned()),
        idempotency_key: key,
        // The processor's own reference, whatever it is.
        processor_ref: after.refunds.last().and_then(|r| r.processor_ref.clone()),
    });
    let new = &after.messages[before.messages.len().min(after.messages.len())..];
    let kinds: Vec<&str> = new.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["payment_captured", "payment_refunded"]);
    expected.messages.extend(new.iter().cloned());
    expected
}

fn cmd(event: Event, actor: ActorKind) -> Command {
    Command::new(event, Shop::actor(actor)).reason(Reason::Other)
}

async fn pay(shop: &Shop, id: OrderId) -> Result<Outcome, FireError> {
    shop.engine
        .fire(id, cmd(Event::Pay, ActorKind::Customer))
        .await
}

/// Money captured and refunded at the processor, over all payments.
fn money(shop: &Shop) -> (i64, i64) {
    (
        shop.payments.total_captured(),
        shop.payments.total_refunded(),
    )
}

/// Captured and refunded at the processor for the order's first payment.
async fn books(shop: &Shop, snapshot: &Snapshot) -> (i64, i64) {
    let reference = snapshot.payments[0].processor_ref.as_deref();
    let balance = shop.payments.balance(reference.expect("a reference")).await;
    let balance = balance.expect("the processor knows it");
    (balance.captured_cents, balance.refunded_cents)
}

/// An order in `state`; in `confirmed` its payment is authorized.
async fn order_ready(shop: &Shop, state: State) -> OrderId {
    let id = shop.order_in(state).await;
    if state == State::Confirmed {
        let attempt = shop.engine.authorize_payment(id).await;
        assert_eq!(attempt.expect("authorization runs").outcome, "authorized");
    }
    id
}

/// Checks a failure: the error's `step:kind`, the one attempt row recording it, the
/// data as `expected` (the snapshot before, or its compensation) and `verify` clean.
async fn assert_failed(
    shop: &Shop,
    id: OrderId,
    result: Result<Outcome, FireError>,
    step_kind: &str,
    expected: impl FnOnce(&Snapshot) -> Snapshot,
) -> (FireError, Attempt) {
    let err = match result {
        Ok(outcome) => panic!("expected {step_kind}, the transition succeeded: {outcome:?}"),
        Err(err) => err,
    };
    assert_eq!(format!("{}:{}", err.step(), err.kind()), step_kind, "{err}");
    let after = snapshot(shop, id).await;
    assert_eq!(after, expected(&after), "the failure ({err}) left a trace");
    let attempts = shop.store.attempts(id).await.expect("readable");
    assert_eq!(attempts.len(), 1, "one attempt row: {attempts:#?}");
    let attempt = attempts[0].clone();
    assert_eq!(attempt.error_kind, step_kind);
    assert!(attempt.error.starts_with(&err.to_string()), "{attempt:?}");
    shop.assert_verified().await;
    (err, attempt)
}

/// (event, actor, armed method, how many of its calls go through first, the error's
/// `step:kind`). Confirm starts in `pending`, pay and cancel in `confirmed` with the
/// payment authorized. Every command has a key, so that its steps all run.
const CASES: &[(Event, ActorKind, &str, usize, &str)] = {
    use {ActorKind::*, Event::*};
    &[
        (Confirm, System, "command_outcome", 0, "idempotency:store"),
        (Confirm, System, "store.begin", 0, "lock:store"),
        (Confirm, System, "lock_order", 0, "lock:store"),
        (Confirm, System, "items", 0, "lock:store"),
        (Confirm, System, "last_seq", 0, "lock:store"),
        (Cancel, Support, "store.staff", 0, "authorization:store"),
        (Confirm, System, "lock_products", 0, "guards:guard_error"),
        (Pay, Customer, "payments", 0, "guards:guard_error"),
        (Pay, Customer, "payments", 1, "guards:guard_error"),
        (Confirm, System, "reserve", 0, "actions:action_failed"),
        (Cancel, Customer, "reserved_by", 0, "actions:action_failed"),
        (Pay, Customer, "update_payment", 0, "actions:action_failed"),
        (Pay, Customer, "entity_trail", 0, "actions:action_failed"),
        (
            Pay,
            Customer,
            "append_entity_transition",
            0,
            "actions:action_failed",
        ),
        // The payment's `payment_captured` comes first, then the order's own.
        (Pay, Customer, "enqueue", 0, "actions:action_failed"),
        (Confirm, System, "update_order", 0, "write:store"),
        (Confirm, System, "append_transition", 0, "write:store"),
        (Confirm, System, "enqueue", 0, "write:store"),
        (Confirm, System, "record_command", 0, "write:store"),
        (Confirm, System, "commit", 0, "commit:store"),
        (Pay, Customer, "update_order", 0, "write:store"),
        (Pay, Customer, "append_transition", 0, "write:store"),
        (Pay, Customer, "enqueue", 1, "write:store"),
        (Pay, Customer, "commit", 0, "commit:store"),
    ]
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fault_at_any_step_leaves_only_the_attempt_and_the_compensation() {
    let (shop, faults) = faulty_shop().await;
    let mut compensations = 0;
    for &(event, actor, method, skip, step_kind) in CASES {
        let label = format!("{event} by {actor} failing `{method}` (skip {skip})");
        // Once `pay` has captured, any failure moves money back; the payment's trail
        // is read before its capture.
        let moved =
            event == Event::Pay && !step_kind.starts_with("guards") && method != "entity_trail";
        let from = if event == Event::Confirm {
            State::Pending
        } else {
            State::Confirmed
        };
        let id = order_ready(&shop, from).await;
        let before = snapshot(&shop, id).await;
        let (captured, refunded) = money(&shop);
        let command = cmd(event, actor).key(format!("key-{id}"));
        faults.arm_nth(method, skip);
        let result = shop.engine.fire(id, command).await;
        assert!(faults.pending().is_empty(), "{label}: no fault: {result:?}");
        let expect = |after: &Snapshot| match moved {
            true => compensated(&before, after),
            false => before.clone(),
        };
        let (err, attempt) = assert_failed(&shop, id, result, step_kind, expect).await;
        assert!(err.to_string().contains("injected fault"), "{label}: {err}");
        let total = before.order.total_cents;
        if moved {
            compensations += 1;
            let undone = attempt.error.contains("undone: refund_payment");
            assert!(undone, "{label}: {attempt:?}");
            assert_eq!(books(&shop, &before).await, (total, total), "{label}");
            assert_eq!(
                money(&shop),
                (captured + total, refunded + total),
                "{label}"
            );
        } else {
            assert_eq!(money(&shop), (captured, refunded), "{label}: money moved");
        }
        // The fault is gone: the same command goes through, except that a compensated
        // capture used up its authorization.
        match shop.engine.fire(id, cmd(event, actor)).await {
            Ok(outcome) => assert!(!moved && outcome.from == from, "{label}: {outcome:?}"),
            Err(FireError::GuardFailed {
                guard: Guard::PaymentAuthorized,
                ..
            }) if moved => {}
            Err(err) => panic!("{label}: the retry failed: {err}"),
        }
    }
    assert_eq!(compensations, 7);
    shop.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_failed_capture_refuses_pay_and_captures_nothing() {
    let (shop, _) = faulty_shop().await;
    let code = "card_declined".to_owned();
    let outage = PaymentError::Unavailable("down".into());
    for error in [PaymentError::Declined { code }, outage] {
        let id = order_ready(&shop, State::Confirmed).await;
        let before = snapshot(&shop, id).await;
        shop.payments.fail_next(Call::Capture, error.clone());
        let result = pay(&shop, id).await;
        let step_kind = "actions:action_failed";
        let (err, _) = assert_failed(&shop, id, result, step_kind, |_| before.clone()).await;
        let FireError::ActionFailed { action, message } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            (action.as_str(), message.as_str()),
            (
                "capture_payment",
                format!("action `request_capture` failed: {error}").as_str()
            )
        );
        assert_eq!(money(&shop), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_timing_out_after_it_happened_is_found_and_refunded() {
    let (shop, _) = faulty_shop().await;
    let id = order_ready(&shop, State::Confirmed).await;
    let before = snapshot(&shop, id).await;
    let calls = shop.engine.config().processor_retries + 1;
    for _ in 0..calls {
        shop.payments.succeed_then_timeout_next(Call::Capture);
    }
    let result = pay(&shop, id).await;
    let compensation = |after: &Snapshot| compensated(&before, after);
    let step_kind = "actions:action_failed";
    let (err, attempt) = assert_failed(&shop, id, result, step_kind, compensation).await;
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        attempt.error.contains("undone: refund_payment"),
        "{attempt:?}"
    );
    let total = before.order.total_cents;
    assert_eq!(books(&shop, &before).await, (total, total));
    assert_eq!(money(&shop), (total, total));
    let kinds: Vec<Call> = shop
        .payments
        .calls()
        .into_iter()
        .map(|(call, _)| call)
        .collect();
    let mut want = vec![Call::Authorize];
    want.extend((0..calls).map(|_| Call::Capture));
    want.push(Call::Refund);
    assert_eq!(
        kinds, want,
        "every retry timed out, then the undo refunded once"
    );
    let after = snapshot(&shop, id).await;
    let shape = (after.order.state, after.history.len(), after.messages.len());
    // The order's own: no audit row, no message. The payment's: authorized, then the
    // capture the undo recorded and the refund the compensation did.
    assert_eq!(shape, (State::Confirmed, 1, 4), "no audit row, no message");

    // A timeout before the effect: nothing captured, nothing to undo.
    let id = order_ready(&shop, State::Confirmed).await;
    let before = snapshot(&shop, id).await;
    for _ in 0..calls {
        shop.payments
            .fail_next(Call::Capture, PaymentError::Timeout);
    }
    let result = pay(&shop, id).await;
    let (_, attempt) = assert_failed(&shop, id, result, step_kind, |_| before.clone()).await;
    assert!(!attempt.error.contains("undone"), "{attempt:?}");
    assert_eq!(money(&shop), (total, total));
    // The same command then captures, once.
    assert_eq!(pay(&shop, id).await.expect("paid").to, State::Paid);
    assert_eq!(money(&shop), (total + before.order.total_cents, total));
    shop.assert_verified().await;
}

/// Pays a confirmed order with a fresh authorization after a first `pay` failed as
/// `fail` arranged: the new capture must not reuse the failed one's key.
async fn pay_again_with_a_fresh_authorization(fail: impl FnOnce(&Shop)) {
    let (shop, _) = faulty_shop().await;
    let id = order_ready(&shop, State::Confirmed).await;
    fail(&shop);
    let refused = pay(&shop, id).await;
    assert!(
        matches!(refused, Err(FireError::ActionFailed { .. })),
        "{refused:?}"
    );
    let attempt = shop
        .engine
        .authorize_payment(id)
        .await
        .expect("authorization runs");
    assert_eq!(attempt.outcome, "authorized");
    let result = pay(&shop, id).await;
    let outcome = result.unwrap_or_else(|err| panic!("the fresh authorization is not paid: {err}"));
    assert_eq!(outcome.to, State::Paid);
    let reference = attempt.payment.processor_ref.expect("a reference");
    let balance = shop.payments.balance(&reference).await.expect("known");
    assert_eq!(balance.captured_cents, attempt.payment.amount_cents);
    shop.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_authorization_can_be_paid_after_a_compensated_capture() {
    pay_again_with_a_fresh_authorization(|shop| {
        for _ in 0..=shop.engine.config().processor_retries {
            shop.payments.succeed_then_timeout_next(Call::Capture);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_authorization_can_be_paid_after_a_declined_capture() {
    pay_again_with_a_fresh_authorization(|shop| {
        let code = "card_declined".to_owned();
        shop.payments
            .fail_next(Call::Capture, PaymentError::Declined { code });
    })
    .await;
}

/// The undo cannot reach the processor: the capture stays, recorded by the undo (the
/// payment is `captured`, the order's version moved once), the attempt says the undo
/// failed, and the retry claims the capture, which the processor still holds, without
/// charging twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_the_processor_refuses_leaves_the_capture_to_the_retry() {
    let (shop, faults) = faulty_shop().await;
    let id = order_ready(&shop, State::Confirmed).await;
    let before = snapshot(&shop, id).await;
    faults.arm("commit");
    for _ in 0..=shop.engine.config().processor_retries {
        shop.payments.fail_next(Call::Refund, PaymentError::Timeout);
    }
    let result = pay(&shop, id).await;
    let reverted = |after: &Snapshot| {
        let mut expected = before.clone();
        expected.order.version += 1;
        expected.order.updated_at = after.order.updated_at;
        expected.order.payment_status = PaymentStatus::Captured;
        expected.payments[0].state = "captured".to_owned();
        let new = &after.messages[before.messages.len().min(after.messages.len())..];
        let kinds: Vec<&str> = new.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["payment_captured"]);
        expected.messages.extend(new.iter().cloned());
        expected
    };
    let (_, attempt) = assert_failed(&shop, id, result, "commit:store", reverted).await;
    assert!(attempt.error.contains("undo failed"), "{attempt:?}");
    let total = before.order.total_cents;
    assert_eq!(money(&shop), (total, 0));
    assert_eq!(pay(&shop, id).await.expect("paid").to, State::Paid);
    assert_eq!(money(&shop), (total, 0));
    shop.assert_verified().await;
}

/// The undo's own commit fails: the undo is recorded before any refund, so nothing is
/// refunded, the payment row still says `authorized`, and a retry claims the capture.
/// A retry must never pass a refunded capture off as payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_an_undo_whose_commit_failed_is_not_paid_with_refunded_money() {
    let (shop, faults) = faulty_shop().await;
    let id = order_ready(&shop, State::Confirmed).await;
    let before = snapshot(&shop, id).await;
    faults.arm("commit");
    faults.arm("commit");
    let result = pay(&shop, id).await;
    let (_, attempt) = assert_failed(&shop, id, result, "commit:store", |_| before.clone()).await;
    assert!(attempt.error.contains("undo failed"), "{attempt:?}");
    let total = before.order.total_cents;
    assert_eq!(money(&shop), (total, 0));
    let outcome = pay(&shop, id).await.expect("the retry claims the capture");
    assert_eq!(money(&shop), (total, 0));
    {
        let (captured, refunded) = books(&shop, &before).await;
        let state = outcome.to;
        assert_eq!(
            captured - refunded,
            total,
            "order {id} is {state}, its money refunded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refund_retried_refunds_once() {
    let (shop, faults) = faulty_shop().await;
    let id = order_ready(&shop, State::Paid).await;
    let before = snapshot(&shop, id).await;
    faults.arm("commit");
    let refund = cmd(Event::Refund, ActorKind::Customer);
    let result = shop.engine.fire(id, refund.clone()).await;
    assert_failed(&shop, id, result, "commit:store", |_| before.clone()).await;
    // `refund_payment` has no undo: the processor refunded, the database did not.
    let total = before.order.total_cents;
    assert_eq!(money(&shop), (total, total));
    let outcome = shop.engine.fire(id, refund).await.expect("refunded");
    assert_eq!(outcome.to, State::Refunded);
    assert_eq!(
        money(&shop),
        (total, total),
        "the retry replayed the refund's key"
    );
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(refunds.iter().map(|r| r.amount_cents).sum::<i64>(), total);
    shop.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_failed_runs_again_and_a_key_that_succeeded_replays() {
    let (shop, faults) = faulty_shop().await;
    let id = shop.order_in(State::Pending).await;
    let before = snapshot(&shop, id).await;
    let confirm = cmd(Event::Confirm, ActorKind::System).key("confirm-once");
    faults.arm("reserve");
    let result = shop.engine.fire(id, confirm.clone()).await;
    assert_failed(&shop, id, result, "actions:action_failed", |_| {
        before.clone()
    })
    .await;
    let first = shop
        .engine
        .fire(id, confirm.clone())
        .await
        .expect("the retry runs");
    assert_eq!(
        (first.to, first.seq, first.replayed),
        (State::Confirmed, 1, false)
    );
    let history = shop.store.history(id).await.expect("readable");
    let keys: Vec<_> = history
        .iter()
        .map(|t| t.idempotency_key.as_deref())
        .collect();
    assert_eq!(keys, [Some("confirm-once")]);

    let attempt = shop
        .engine
        .authorize_payment(id)
        .await
        .expect("authorization runs");
    let pay = cmd(Event::Pay, ActorKind::Customer).key("pay-once");
    let paid = shop.engine.fire(id, pay.clone()).await.expect("paid");
    let after_pay = snapshot(&shop, id).await;
    for (command, outcome) in [(confirm, first), (pay, paid)] {
        let replay = shop.engine.fire(id, command).await.expect("replayed");
        assert!(replay.replayed, "{replay:?}");
        assert_eq!(
            Outcome {
                replayed: false,
                ..replay
            },
            outcome
        );
    }
    assert_eq!(
        snapshot(&shop, id).await,
        after_pay,
        "a replay wrote something"
    );
    let calls = shop.payments.calls();
    let captures = calls
        .iter()
        .filter(|(call, _)| *call == Call::Capture)
        .count();
    assert_eq!(captures, 1, "a replay captured again");
    let total = after_pay.order.total_cents;
    let reference = attempt.payment.processor_ref.expect("a reference");
    let balance = shop.payments.balance(&reference).await.expect("known");
    assert_eq!(balance.captured_cents, total);
    assert_eq!(shop.store.attempts(id).await.expect("readable").len(), 1);
    shop.assert_verified().await;
}

/// An idempotency key belongs to one command: sent with another order, it must not
/// answer with the first order's outcome while the second has not moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_order_does_not_pass_for_its_outcome() {
    let (shop, _) = faulty_shop().await;
    let (first, second) = (shop.order().await, shop.order().await);
    let confirm = cmd(Event::Confirm, ActorKind::System).key("shared-key");
    shop.engine
        .fire(first, confirm.clone())
        .await
        .expect("confirmed");
    if let Ok(outcome) = shop.engine.fire(second, confirm).await {
        let replayed = format!("order {second} got order {first}'s outcome: {outcome:?}");
        assert_eq!(outcome.order, second, "{replayed}");
        assert_eq!(shop.state(second).await, outcome.to);
    }
}

/// Bulk runs a batch in one transaction with a savepoint per order: an order whose
/// action fails is rolled back alone, the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_bulk_batch_a_failing_order_is_rolled_back_alone() {
    use order_core::bulk::{BulkOptions, BulkTarget};
    let (shop, faults) = faulty_shop().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(shop.order_in(State::Confirmed).await);
    }
    // Cancelling releases stock: the second order's ledger read fails.
    faults.arm_nth("reserved_by", 1);
    let command = cmd(Event::Cancel, ActorKind::Support);
    let options = BulkOptions {
        dry_run: false,
        batch_size: 10,
    };
    let report = shop
        .engine
        .bulk(&BulkTarget::Ids(ids.clone()), &command, options)
        .await;
    let report = report.expect("the bulk runs");
    assert_eq!(report.count("fired"), 3, "{report:#?}");
    assert_eq!(report.count("action_failed"), 1, "{report:#?}");
    assert_eq!(shop.state(ids[1]).await, State::Confirmed);
    for id in [ids[0], ids[2], ids[3]] {
        assert_eq!(shop.state(id).await, State::Cancelled);
    }
    let attempts = shop.store.attempts(ids[1]).await.expect("readable");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error_kind, "actions:action_failed");
    shop.assert_verified().await;
}

/// A batch whose commit fails leaves nothing but an attempt per order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_batch_whose_commit_fails_changes_nothing() {
    use order_core::bulk::{BulkOptions, BulkTarget};
    let (shop, faults) = faulty_shop().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(shop.order_in(State::Pending).await);
    }
    let before = shop.store.products().await.expect("readable");
    faults.arm("commit");
    let command = cmd(Event::Confirm, ActorKind::System);
    let options = BulkOptions {
        dry_run: false,
        batch_size: 10,
    };
    let report = shop
        .engine
        .bulk(&BulkTarget::Ids(ids.clone()), &command, options)
        .await;
    let report = report.expect("the bulk runs");
    assert_eq!(report.count("fired"), 0, "{report:#?}");
    assert_eq!(report.count("store"), 3, "{report:#?}");
    for id in &ids {
        assert_eq!(shop.state(*id).await, State::Pending);
        assert!(shop.store.history(*id).await.expect("readable").is_empty());
        assert_eq!(shop.store.attempts(*id).await.expect("readable").len(), 1);
    }
    assert_eq!(shop.store.products().await.expect("readable"), before);
    shop.assert_verified().await;
}
