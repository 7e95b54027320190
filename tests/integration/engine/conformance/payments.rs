//! Conformance checks: payments and refunds, through the store and against the
//! database's own guard on refunds.

use super::*;

/// Payments round-trip, numbered per order; a repeated key, unknown state or id is refused.
pub(super) async fn payments_round_trip(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let new = |order, key| payment(order, 1_750, key);
    let mut tx = ok!(store.begin());
    let first = ok!(tx.insert_payment(&new(id, "pay-1")));
    let fields = |p: &Payment| (p.order, p.attempt_no, p.state.clone(), p.amount_cents);
    assert_eq!(fields(&first), (id, 1, "initiated".into(), 1_750));
    assert_eq!(first.idempotency_key, "pay-1");
    assert_eq!((&first.processor_ref, &first.failure_code), (&None, &None));
    assert!(!first.fraud_review);
    // Refusals leave the transaction usable.
    let again = tx.insert_payment(&new(id, "pay-1")).await;
    assert_invalid(again, "a key repeated in its transaction");
    let mut declined = first.clone();
    (declined.state, declined.processor_ref) = ("failed".into(), Some("ch_1".into()));
    declined.failure_code = Some("card_declined".into());
    ok!(tx.update_payment(&declined, at(2)));
    let second = ok!(tx.insert_payment(&new(id, "pay-2")));
    assert_eq!(fields(&second), (id, 2, "initiated".into(), 1_750));
    assert_ne!(second.id, declined.id);
    let mut captured = second.clone();
    (captured.state, captured.amount_cents) = ("captured".into(), 1_500);
    (captured.processor_ref, captured.fraud_review) = (Some("ch_2".into()), true);
    ok!(tx.update_payment(&captured, at(3)));
    let mut lost = captured.clone();
    lost.state = "lost".into();
    assert_invalid(
        tx.update_payment(&lost, at(3)).await,
        "a state payments do not have",
    );
    let elsewhere = ok!(tx.insert_payment(&new(other, "pay-3")));
    assert_eq!(elsewhere.attempt_no, 1, "numbered per order");
    let both = [declined, captured.clone()];
    assert_eq!(ok!(tx.payments(id)), both);
    ok!(tx.commit());
    assert_eq!(ok!(store.payments(id)), both);
    assert_eq!(ok!(store.payments(other)), std::slice::from_ref(&elsewhere));

    refused!(store, tx => tx.insert_payment(&new(other, "pay-1")), "a repeated key");
    captured.id = PaymentId(999_999);
    refused!(store, tx => tx.update_payment(&captured, at(4)), "an unknown payment");
    assert_eq!(ok!(store.payments(other)), [elsewhere]);
}

/// Payments are found by their processor's reference, several when a split shares one.
pub(super) async fn payments_are_found_by_processor_reference(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let mut tx = ok!(store.begin());
    let mut first = ok!(tx.insert_payment(&payment(id, 500, "pay-1")));
    let mut second = ok!(tx.insert_payment(&payment(other, 500, "pay-2")));
    let mut third = ok!(tx.insert_payment(&payment(id, 500, "pay-3")));
    // A split child's payment shares its parent's reference.
    first.processor_ref = Some("ch_1".into());
    second.processor_ref = Some("ch_1".into());
    third.processor_ref = Some("ch_3".into());
    for p in [&second, &first, &third] {
        ok!(tx.update_payment(p, at(2)));
    }
    assert_eq!(
        ok!(tx.payments_by_reference("ch_1")),
        [first.clone(), second]
    );
    assert_eq!(ok!(tx.payments_by_reference("ch_3")), [third]);
    assert_eq!(ok!(tx.payments_by_reference("ch_9")), []);
    ok!(tx.commit());
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.payments_by_reference("ch_1"))[0], first);
    ok!(tx.rollback());
}

/// Refunds round-trip, and succeeded ones never exceed what their payment captured.
pub(super) async fn refunds_round_trip_within_the_captured_amount(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let id = new_order(&*store, "ann@example.com", &[("A", 4)]).await.id;
    let mut tx = ok!(store.begin());
    let mut captured = ok!(tx.insert_payment(&payment(id, 1_000, "pay-1")));
    let pending = ok!(tx.insert_payment(&payment(id, 1_000, "pay-2")));
    captured.state = "captured".into();
    ok!(tx.update_payment(&captured, at(1)));
    let refund = |amount_cents, key: &str| Refund {
        order: id,
        payment: captured.id,
        amount_cents,
        state: "succeeded".into(),
        reason: Some("damaged".into()),
        idempotency_key: key.into(),
        processor_ref: Some(format!("re_{key}")),
    };
    let (first, mut second) = (refund(400, "refund-1"), refund(600, "refund-2"));
    ok!(tx.insert_refund(&first, at(2)));
    ok!(tx.insert_refund(&second, at(3)));
    assert_eq!(ok!(tx.refunds(id)), [first.clone(), second.clone()]);
    ok!(tx.update_refund_state("refund-2", "reversed"));
    ok!(tx.commit());
    second.state = "reversed".into();
    assert_eq!(ok!(store.refunds(id)), [first.clone(), second.clone()]);

    // Succeeded refunds never exceed the captured amount: 400 of 1000 so far. Each
    // refusal leaves the transaction usable.
    let mut uncaptured = refund(1, "refund-4");
    uncaptured.payment = pending.id;
    let beyond = "exceed the captured";
    let mut tx = ok!(store.begin());
    for (bad, words, what) in [
        (
            refund(601, "refund-3"),
            beyond,
            "more than the rest of the capture",
        ),
        (refund(1, "refund-1"), "", "a repeated key"),
        (uncaptured, beyond, "a payment that was not captured"),
    ] {
        assert_invalid_saying(tx.insert_refund(&bad, at(4)).await, words, what);
    }
    let third = refund(600, "refund-3");
    ok!(tx.insert_refund(&third, at(5)));
    let revive = tx.update_refund_state("refund-2", "succeeded").await;
    assert_invalid_saying(revive, beyond, "reviving a refund beyond the capture");
    let unknown = tx.update_refund_state("nope", "failed").await;
    assert_invalid(unknown, "an unknown refund");
    ok!(tx.commit());
    assert_eq!(ok!(store.refunds(id)), [first, second, third]);
}

/// The database itself keeps succeeded refunds within their payment's capture.
pub(super) async fn the_database_keeps_refunds_within_the_capture(
    store: Arc<dyn Store>,
    raw: RawSql,
) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let mut tx = ok!(store.begin());
    let paid = ok!(tx.insert_payment(&payment(id, 500, "pay-1"))).id.0;
    ok!(tx.commit());
    let set_state =
        |state: &str| format!("UPDATE payments SET state = '{state}' WHERE id = {paid}");
    // The refund's time is copied from the payment, in the adapter's own format.
    let refund = |amount: i64, state: &str, key: &str| {
        format!(
            "INSERT INTO refunds (order_id, payment_id, amount_cents, state, idempotency_key, \
                 created_at) \
             SELECT order_id, id, {amount}, '{state}', '{key}', created_at \
             FROM payments WHERE id = {paid}"
        )
    };
    let beyond = "refunds exceed the captured amount";
    ok!(raw.exec(set_state("authorized")));
    raw.refuses(&refund(100, "succeeded", "r0"), beyond).await;
    ok!(raw.exec(set_state("captured")));
    ok!(raw.exec(refund(300, "succeeded", "r1")));
    raw.refuses(&refund(201, "succeeded", "r2"), beyond).await;
    ok!(raw.exec(refund(200, "succeeded", "r3")));
    // A failed refund does not count, but turning it into a succeeded one is checked.
    ok!(raw.exec(refund(1, "failed", "r4")));
    let revive = "UPDATE refunds SET state = 'succeeded' WHERE idempotency_key = 'r4'";
    raw.refuses(revive, beyond).await;
    let refunds = ok!(store.refunds(id));
    let kept: Vec<_> = refunds
        .iter()
        .map(|r| (r.idempotency_key.as_str(), r.amount_cents, r.state.as_str()))
        .collect();
    let expected = [
        ("r1", 300, "succeeded"),
        ("r3", 200, "succeeded"),
        ("r4", 1, "failed"),
    ];
    assert_eq!(kept, expected);
}
