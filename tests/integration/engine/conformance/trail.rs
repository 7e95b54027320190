//! Conformance checks: the audit trail, outbox, command log, shipments and attempts.

use super::*;

/// Audit rows round-trip field by field, numbered per order, read in sequence order.
pub(super) async fn audit_trail_round_trips_in_seq_order(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let metadata = json!({"source": "conformance", "n": 1});
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.last_seq(id)), 0);
    let entered = ok!(tx.entered_at(id, Pending));
    assert_eq!(entered, Some(at(0)), "entered when created");
    assert_eq!(ok!(tx.entered_at(id, Confirmed)), None);
    let mut first = row(id, 1, Confirm, Pending, Confirmed);
    (first.actor_kind, first.actor_id) = (ActorKind::Customer, Some("ann@example.com"));
    (first.note, first.machine_hash) = (Some("first"), "hash-1");
    (first.idempotency_key, first.metadata) = (Some("key-1"), &metadata);
    ok!(tx.append_transition(&first));
    assert_eq!(ok!(tx.last_seq(id)), 1);
    let mut cancel = row(id, 2, Cancel, Confirmed, Cancelled);
    (cancel.actor_kind, cancel.actor_id) = (ActorKind::Support, Some("sam"));
    cancel.reason = Some(Reason::CustomerRequest);
    let mut reopen = row(id, 3, Reopen, Cancelled, Pending);
    (reopen.actor_kind, reopen.actor_id) = (ActorKind::Admin, Some("ada"));
    (reopen.reason, reopen.is_override) = (Some(Reason::Other), true);
    for next in [&cancel, &reopen, &row(id, 4, Confirm, Pending, Confirmed)] {
        ok!(tx.append_transition(next));
    }
    assert_eq!(ok!(tx.last_seq(id)), 4);
    let last_entered = [(Confirmed, 4), (Pending, 3), (Cancelled, 2)];
    for (state, minute) in last_entered {
        assert_eq!(ok!(tx.entered_at(id, state)), Some(at(minute)), "{state}");
    }
    assert_eq!(ok!(tx.entered_at(id, Paid)), None);
    let mut current = ok!(tx.lock_order(id)).expect("the order exists");
    current.state = Confirmed;
    assert!(ok!(tx.update_order(&current, at(4))));
    ok!(tx.commit());

    let history = ok!(store.history(id));
    let seqs: Vec<i64> = history.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let expected = TransitionRecord {
        order: id,
        seq: 1,
        event: Confirm,
        from: Pending,
        to: Confirmed,
        actor_kind: ActorKind::Customer,
        actor_id: Some("ann@example.com".into()),
        reason: None,
        note: Some("first".into()),
        is_override: false,
        machine_hash: "hash-1".into(),
        idempotency_key: Some("key-1".into()),
        metadata: metadata.clone(),
        at: at(1),
    };
    assert_eq!(history[0], expected);
    let r = &history[2];
    assert_eq!((r.event, r.from, r.to), (Reopen, Cancelled, Pending));
    assert_eq!((r.actor_kind, r.at), (ActorKind::Admin, at(3)));
    assert_eq!(r.actor_id.as_deref(), Some("ada"));
    assert_eq!((r.reason, r.is_override), (Some(Reason::Other), true));
    assert_eq!(history[1].reason, Some(Reason::CustomerRequest));
    assert_eq!(history[3].metadata, NO_METADATA);
    assert_eq!(history[3].note, None);

    let repeated = row(id, 4, Cancel, Confirmed, Cancelled);
    refused!(store, tx => tx.append_transition(&repeated), "a repeated (order, seq)");
    assert_eq!(ok!(store.history(id)), history);
    // Each order numbers its own trail.
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    walk(&*store, other, &[(Cancel, Cancelled)]).await;
    assert_eq!(ok!(store.history(other))[0].seq, 1);
    assert_verified(&*store).await;
}

/// The database refuses to change or delete audit rows, and to take one out of turn.
pub(super) async fn the_audit_trail_is_append_only(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    walk(&*store, id, &[(Confirm, Confirmed)]).await;
    let before = ok!(store.history(id));
    for sql in [
        format!("UPDATE order_transitions SET note = 'rewritten' WHERE order_id = {id}"),
        format!("UPDATE order_transitions SET seq = 7 WHERE order_id = {id}"),
        "UPDATE order_transitions SET to_state = 'paid'".to_owned(),
        format!("DELETE FROM order_transitions WHERE order_id = {id}"),
        "DELETE FROM order_transitions".to_owned(),
    ] {
        raw.refuses(&sql, "order_transitions is append-only").await;
    }
    // Nor does it take seq 2 of an order without seq 1.
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let gapped = format!(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
             actor_kind, is_override, machine_hash, created_at) \
         VALUES ({other}, 2, 'confirm', 'pending', 'confirmed', 'system', FALSE, 'h', \
             '2026-03-02T10:00:00Z')"
    );
    raw.refuses(&gapped, "seq must follow").await;
    assert_eq!(ok!(store.history(other)), []);
    // The hook does run statements.
    ok!(raw.exec(format!("UPDATE orders SET number = 'N' WHERE id = {id}")));
    let order = ok!(store.order(id)).expect("the order exists");
    assert_eq!(order.number, "N");
    assert_eq!(ok!(store.history(id)), before);
    assert_verified(&*store).await;
}

/// Outbox messages are kept once per key, come due oldest first and retry until delivered.
pub(super) async fn outbox_enqueues_dedupes_and_delivers(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let payload = json!({"order": id, "to": "confirmed"});
    let kinds = ["order_confirmed", "payment_received", "order_shipped"];
    let keys: Vec<String> = (1..=3).map(|n| format!("order:{id}:{n}")).collect();
    let mut tx = ok!(store.begin());
    for (i, kind) in kinds.iter().enumerate() {
        ok!(tx.enqueue(&message(id, kind, &keys[i], &payload, i as i64 + 1)));
    }
    ok!(tx.commit());
    let messages = ok!(store.messages(id));
    for (i, m) in messages.iter().enumerate() {
        assert_eq!((m.kind.as_str(), &m.dedupe_key), (kinds[i], &keys[i]));
        assert_eq!((m.aggregate, &m.payload), (id, &payload));
        assert_eq!((m.attempts, m.created_at), (0, at(i as i64 + 1)));
        assert_eq!(m.delivered_at, None);
    }
    assert_eq!(messages.len(), 3);
    let [m1, m2, m3] = [0, 1, 2].map(|i| messages[i].id);
    assert!(m1 < m2 && m2 < m3);
    let again = message(id, kinds[1], &keys[0], &payload, 4);
    refused!(store, tx => tx.enqueue(&again), "a repeated dedupe key");

    let due = async |now: i64, limit: i64| -> Vec<i64> {
        let due = ok!(store.due_messages(at(now), limit));
        due.iter().map(|m| m.id).collect()
    };
    assert!(due(0, 10).await.is_empty(), "nothing is due yet");
    assert_eq!(due(2, 10).await, [m1, m2]);
    assert_eq!(
        ok!(store.due_messages(at(2), 10)),
        messages[..2],
        "read in full"
    );
    assert_eq!(due(3, 2).await, [m1, m2]);
    assert!(due(3, 0).await.is_empty(), "a limit of 0");
    ok!(store.mark_failed(m1, "timeout", at(10)));
    assert_eq!(due(5, 10).await, [m2, m3], "m1 is due again at 10");
    assert_eq!(due(10, 10).await, [m1, m2, m3]);
    ok!(store.mark_delivered(m2, at(11)));
    assert_eq!(due(20, 10).await, [m1, m3]);
    let messages = ok!(store.messages(id));
    let state: Vec<_> = messages
        .iter()
        .map(|m| (m.id, m.attempts, m.delivered_at))
        .collect();
    assert_eq!(state, [(m1, 1, None), (m2, 0, Some(at(11))), (m3, 0, None)]);
    let unknown = store.mark_delivered(999_999, at(12)).await;
    assert_invalid(unknown, "delivering an unknown message");
    let unknown = store.mark_failed(999_999, "x", at(12)).await;
    assert_invalid(unknown, "failing an unknown message");
    assert_eq!(ok!(store.messages(OrderId(999_999))), []);
}

/// A command's outcome is recorded once per key, and read back in its transaction and after.
pub(super) async fn command_log_records_an_outcome_once(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let text = r#"{"to":"confirmed"}"#;
    let outcome = Some(text.to_owned());
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.command_outcome("cmd-1")), None);
    ok!(tx.record_command("cmd-1", id, text, at(1)));
    assert_eq!(ok!(tx.command_outcome("cmd-1")), outcome);
    // A refusal leaves the transaction usable.
    let again = tx.record_command("cmd-1", id, "{}", at(1)).await;
    assert_invalid(again, "a key repeated in its transaction");
    assert_eq!(ok!(tx.command_outcome("cmd-1")), outcome);
    ok!(tx.commit());
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.command_outcome("cmd-1")), outcome);
    assert_eq!(ok!(tx.command_outcome("cmd-2")), None);
    ok!(tx.rollback());
    refused!(store, tx => tx.record_command("cmd-1", id, "{}", at(2)), "a repeated key");
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.command_outcome("cmd-1")), outcome);
    ok!(tx.rollback());
}

/// Parcels record their lines and round-trip; refusals in the shipping transaction write nothing.
pub(super) async fn shipments_round_trip(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = new_order(&*store, "ann@x.com", &[("A", 3), ("B", 1)])
        .await
        .id;
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let items = ok!(store.items(id));
    let (line_a, line_b) = (items[0].id, items[1].id);
    let (one, both) = ([(line_a, 2)], [(line_a, 1), (line_b, 1)]);
    let mut tx = ok!(store.begin());
    let first = ok!(tx.insert_shipment(id, "dhl", Some("T-1"), &one, at(1)));
    let second = ok!(tx.insert_shipment(id, "ups", None, &both, at(2)));
    assert_ne!(first, second);
    let shipped: Vec<i64> = ok!(tx.items(id)).iter().map(|i| i.qty_shipped).collect();
    assert_eq!(shipped, [3, 1]);
    // Refusals leave the transaction usable and write nothing.
    let other_line = ok!(tx.items(other))[0].id;
    for (lines, what) in [
        (vec![(line_b, 1)], "more than ordered"),
        (vec![(other_line, 1)], "not its line"),
        (vec![(ItemId(999_999), 1)], "a line that does not exist"),
        (vec![], "no lines"),
    ] {
        assert_invalid(
            tx.insert_shipment(id, "dhl", None, &lines, at(2)).await,
            what,
        );
    }
    assert_invalid(
        tx.set_returned(line_b, 2).await,
        "more returned than shipped",
    );
    // New parcels start in `label_created`, shipment.fsm's initial state.
    let states: Vec<String> = ok!(tx.shipments(id)).into_iter().map(|s| s.state).collect();
    assert_eq!(states, ["label_created", "label_created"]);
    let path = [
        ("pick_up", "label_created", "in_transit"),
        ("dispatch", "in_transit", "out_for_delivery"),
        ("deliver", "out_for_delivery", "delivered"),
    ];
    for (seq, names) in (1..).zip(path) {
        ok!(tx.write_shipment_transition(&shipment_row(first, id, seq, names, seq + 2)));
    }
    let lose = ("report_lost", "label_created", "lost");
    // `report_lost` does not leave `label_created` in shipment.fsm, but the store does
    // not check the machine's table: the engine does.
    ok!(tx.write_shipment_transition(&shipment_row(second, id, 1, lose, 6)));
    ok!(tx.set_returned(line_a, 2));
    ok!(tx.commit());

    let parcel = |parcel, state: &str, carrier: &str, items: &[_], shipped, delivered| Shipment {
        id: parcel,
        order: id,
        state: state.into(),
        carrier: carrier.into(),
        tracking_number: (carrier == "dhl").then(|| "T-1".to_owned()),
        items: items.to_vec(),
        shipped_at: at(shipped),
        delivered_at: delivered,
    };
    let expected = [
        parcel(first, "delivered", "dhl", &one, 1, Some(at(5))),
        parcel(second, "lost", "ups", &both, 2, None),
    ];
    assert_eq!(ok!(store.shipments(id)), expected);
    let items = ok!(store.items(id));
    let returned: Vec<i64> = items.iter().map(|i| i.qty_returned).collect();
    assert_eq!(returned, [2, 0]);

    for (line, what) in [(line_b, "more than ordered"), (other_line, "not its line")] {
        refused!(store, tx => tx.insert_shipment(id, "dhl", None, &[(line, 1)], at(7)), what);
    }
    refused!(store, tx => tx.set_returned(line_b, 2), "more returned than shipped");
    assert_eq!(ok!(store.shipments(id)), expected);
    assert_eq!(ok!(store.shipments(other)), []);
    assert_verified(&*store).await;
}

/// A shipment's audit row by the carrier, at minute `minute`.
fn shipment_row<'a>(
    shipment: ShipmentId,
    order: OrderId,
    seq: i64,
    (event, from, to): (&'a str, &'a str, &'a str),
    minute: i64,
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
        metadata: &NO_METADATA,
        at: at(minute),
    }
}

/// Refused and failed commands are recorded per order, oldest first.
pub(super) async fn attempts_are_recorded_oldest_first(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let first = Attempt {
        order: id,
        event: Event::Pay,
        actor_kind: ActorKind::Customer,
        actor_id: Some("ann@example.com".into()),
        error_kind: "guards:guard_failed".into(),
        error: "guard `payment_authorized` was false".into(),
        at: at(1),
    };
    let mut second = first.clone();
    (second.event, second.actor_kind, second.actor_id) = (Event::Ship, ActorKind::System, None);
    (second.error_kind, second.at) = ("candidates:invalid_transition".into(), at(2));
    ok!(store.record_attempt(&first));
    ok!(store.record_attempt(&second));
    assert_eq!(ok!(store.attempts(id)), [first.clone(), second]);
    // A command naming no order is recorded too.
    let mut ghost = first;
    ghost.order = OrderId(999_999);
    ok!(store.record_attempt(&ghost));
    assert_eq!(ok!(store.attempts(ghost.order)), [ghost]);
    assert_eq!(ok!(store.history(id)), []);
}

/// A name the machine does not know, stored in the trail, is corrupt data, not a panic.
pub(super) async fn an_unknown_name_in_the_trail_is_corrupt_data(
    store: Arc<dyn Store>,
    raw: RawSql,
) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    walk(&*store, id, &[(Confirm, Confirmed)]).await;
    // The row's time is copied from the first row, in the adapter's own format.
    ok!(raw.exec(format!(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
             actor_kind, is_override, machine_hash, created_at) \
         SELECT order_id, 2, 'teleport', 'confirmed', 'paid', 'system', FALSE, 'h', \
             created_at \
         FROM order_transitions WHERE order_id = {id} AND seq = 1"
    )));
    match store.history(id).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("teleport"), "{message}"),
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
}
