//! Conformance checks: shipments running `shipment.fsm` (their transitions, their own
//! audit trail, lookups by id and tracking number, shipped quantities) and `verify` on
//! them.

use super::*;

/// A parcel of one unit of the order's first line, by `dhl`, its label made at minute 1.
/// (Orders of `parcels` get enough units for three.)
async fn ship(store: &dyn Store, order: OrderId, tracking: Option<&str>) -> ShipmentId {
    let line = ok!(store.items(order))[0].id;
    let mut tx = ok!(store.begin());
    let id = ok!(tx.insert_shipment(order, "dhl", tracking, &[(line, 1)], at(1)));
    ok!(tx.commit());
    id
}

/// A shipment's audit row by the carrier, at minute `10 + seq`.
fn step<'a>(
    shipment: ShipmentId,
    order: OrderId,
    seq: i64,
    (event, from, to): (&'a str, &'a str, &'a str),
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
        actor_id: Some("dhl"),
        reason: None,
        is_override: false,
        machine_hash: "shipment-hash",
        external_id: None,
        metadata: &NO_METADATA,
        at: at(10 + seq),
    }
}

const PICK_UP: (&str, &str, &str) = ("pick_up", "label_created", "in_transit");
const SCAN: (&str, &str, &str) = ("scan", "in_transit", "in_transit");
const DISPATCH: (&str, &str, &str) = ("dispatch", "in_transit", "out_for_delivery");
const DELIVER: (&str, &str, &str) = ("deliver", "out_for_delivery", "delivered");

/// Moves a parcel along `path` from its trail's end, committed.
async fn journey(store: &dyn Store, shipment: ShipmentId, path: &[(&str, &str, &str)]) {
    let mut tx = ok!(store.begin());
    let parcel = ok!(tx.lock_shipment(shipment)).expect("the shipment exists");
    let mut seq = ok!(tx.entity_trail("Shipment", shipment.0)).len() as i64;
    for &names in path {
        seq += 1;
        ok!(tx.write_shipment_transition(&step(shipment, parcel.order, seq, names)));
    }
    ok!(tx.commit());
}

/// An order of three `A`, enough for three parcels.
async fn parcels(store: &dyn Store) -> OrderId {
    new_order(store, "ann@example.com", &[("A", 3)]).await.id
}

async fn state_of(store: &dyn Store, order: OrderId, shipment: ShipmentId) -> Shipment {
    let parcels = ok!(store.shipments(order));
    let found = parcels.into_iter().find(|s| s.id == shipment);
    found.expect("the shipment exists")
}

pub(super) async fn shipment_transitions_move_the_parcel_and_append_its_trail(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let id = parcels(&*store).await;
    let shipment = ship(&*store, id, Some("T-1")).await;
    let other = ship(&*store, id, None).await;
    let metadata = json!({"scan": "Leipzig", "n": 2});

    let mut tx = ok!(store.begin());
    let parcel = ok!(tx.lock_shipment(shipment)).expect("the shipment exists");
    assert_eq!(
        (parcel.state.as_str(), parcel.delivered_at),
        ("label_created", None)
    );
    assert_eq!(ok!(tx.entity_trail("Shipment", shipment.0)), []);
    let mut pick_up = step(shipment, id, 1, PICK_UP);
    (pick_up.external_id, pick_up.metadata) = (Some("dhl:evt-1"), &metadata);
    ok!(tx.write_shipment_transition(&pick_up));
    let mut scan = step(shipment, id, 2, SCAN);
    (scan.actor_kind, scan.actor_id) = ("support", Some("sam"));
    (scan.reason, scan.is_override) = (Some("carrier_error"), true);
    ok!(tx.write_shipment_transition(&scan));
    ok!(tx.write_shipment_transition(&step(shipment, id, 3, DISPATCH)));
    let parcel = ok!(tx.lock_shipment(shipment)).expect("the shipment exists");
    assert_eq!(
        (parcel.state.as_str(), parcel.delivered_at),
        ("out_for_delivery", None)
    );
    ok!(tx.write_shipment_transition(&step(shipment, id, 4, DELIVER)));
    // Another parcel numbers its own trail.
    ok!(tx.write_shipment_transition(&step(other, id, 1, PICK_UP)));
    let in_tx = ok!(tx.entity_trail("Shipment", shipment.0));
    ok!(tx.commit());

    let delivered = state_of(&*store, id, shipment).await;
    assert_eq!(delivered.state, "delivered");
    assert_eq!(
        delivered.delivered_at,
        Some(at(14)),
        "the deliver row's time"
    );
    assert_eq!(delivered.shipped_at, at(1));
    assert_eq!(state_of(&*store, id, other).await.state, "in_transit");

    let trail = ok!(store.entity_trail("Shipment", shipment.0));
    assert_eq!(trail, in_tx);
    let seqs: Vec<i64> = trail.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let expected = EntityTransition {
        machine: "Shipment".into(),
        entity: shipment.0,
        order: id,
        seq: 1,
        event: "pick_up".into(),
        from: "label_created".into(),
        to: "in_transit".into(),
        actor_kind: "carrier".into(),
        actor_id: Some("dhl".into()),
        reason: None,
        is_override: false,
        machine_hash: "shipment-hash".into(),
        external_id: Some("dhl:evt-1".into()),
        metadata: metadata.clone(),
        at: at(11),
    };
    assert_eq!(trail[0], expected);
    let r = &trail[1];
    assert_eq!((r.event.as_str(), r.from.as_str(), r.to.as_str()), SCAN);
    assert_eq!(
        (r.actor_kind.as_str(), r.actor_id.as_deref()),
        ("support", Some("sam"))
    );
    assert_eq!(
        (r.reason.as_deref(), r.is_override),
        (Some("carrier_error"), true)
    );
    assert_eq!((&r.metadata, &r.external_id), (&NO_METADATA, &None));
    let to: Vec<&str> = trail.iter().map(|r| r.to.as_str()).collect();
    assert_eq!(
        to,
        ["in_transit", "in_transit", "out_for_delivery", "delivered"]
    );
    let other_trail = ok!(store.entity_trail("Shipment", other.0));
    assert_eq!(other_trail.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(
        ok!(store.entity_trail("Payment", shipment.0)),
        [],
        "per machine"
    );
    assert_eq!(ok!(store.entity_trail("Shipment", 999_999)), []);
    // The order's own trail is untouched.
    assert_eq!(ok!(store.history(id)), []);
    assert_verified(&*store).await;
}

pub(super) async fn shipment_transition_refusals_write_nothing_and_keep_the_tx(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let bob = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let shipment = ship(&*store, id, Some("T-1")).await;
    journey(&*store, shipment, &[PICK_UP, DISPATCH]).await;
    let before = ok!(store.shipments(id));
    let trail = ok!(store.entity_trail("Shipment", shipment.0));

    let deliver = step(shipment, id, 3, DELIVER);
    let mut wrong_from = deliver.clone();
    wrong_from.from = "in_transit";
    let (mut repeated, mut skipped, mut zero) = (deliver.clone(), deliver.clone(), deliver.clone());
    (repeated.seq, skipped.seq, zero.seq) = (2, 4, 0);
    let mut payment = deliver.clone();
    payment.machine = "Payment";
    let mut lowercase = deliver.clone();
    lowercase.machine = "shipment";
    let mut missing = deliver.clone();
    missing.entity = 999_999;
    let mut elsewhere = deliver.clone();
    elsewhere.order = bob;
    let mut unknown_state = deliver.clone();
    unknown_state.to = "teleported";
    // Every refusal in one transaction: each leaves it usable and writes nothing.
    let mut tx = ok!(store.begin());
    for (bad, what) in [
        (&wrong_from, "a `from` that is not the current state"),
        (&repeated, "a repeated seq"),
        (&skipped, "a seq that skips one"),
        (&zero, "seq 0"),
        (&payment, "another machine's row"),
        (&lowercase, "a machine misspelt"),
        (&missing, "a shipment that does not exist"),
        (&elsewhere, "a shipment of another order"),
        (&unknown_state, "a state shipment.fsm does not have"),
    ] {
        assert_invalid(tx.write_shipment_transition(bad).await, what);
    }
    assert_eq!(ok!(tx.entity_trail("Shipment", shipment.0)), trail);
    assert_eq!(ok!(tx.shipments(id)), before);
    assert_eq!(ok!(tx.entity_trail("Payment", shipment.0)), []);
    ok!(tx.write_shipment_transition(&deliver));
    ok!(tx.commit());
    let delivered = state_of(&*store, id, shipment).await;
    assert_eq!(
        (delivered.state.as_str(), delivered.delivered_at),
        ("delivered", Some(at(13)))
    );
    let seqs: Vec<i64> = ok!(store.entity_trail("Shipment", shipment.0))
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);

    // A rolled-back transition leaves neither the state nor the row.
    let mut tx = ok!(store.begin());
    let reverse = step(shipment, id, 4, ("reverse_delivery", "delivered", "lost"));
    ok!(tx.write_shipment_transition(&reverse));
    ok!(tx.rollback());
    assert_eq!(state_of(&*store, id, shipment).await, delivered);
    assert_eq!(ok!(store.entity_trail("Shipment", shipment.0)).len(), 3);
    assert_verified(&*store).await;
}

/// The database refuses to change, delete or skip a parcel's audit rows.
pub(super) async fn the_entity_trail_is_append_only(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let shipment = ship(&*store, id, None).await;
    journey(&*store, shipment, &[PICK_UP, SCAN]).await;
    let before = ok!(store.entity_trail("Shipment", shipment.0));
    let s = shipment.0;
    for sql in [
        format!("UPDATE entity_transitions SET to_state = 'lost' WHERE entity_id = {s}"),
        format!("UPDATE entity_transitions SET seq = 7 WHERE entity_id = {s}"),
        format!("DELETE FROM entity_transitions WHERE entity_id = {s} AND seq = 2"),
        "DELETE FROM entity_transitions".to_owned(),
    ] {
        raw.refuses(&sql, "entity_transitions is append-only").await;
    }
    // Nor does it take a row out of turn.
    let gapped = format!(
        "INSERT INTO entity_transitions (machine, entity_id, order_id, seq, event, from_state, \
             to_state, actor_kind, is_override, machine_hash, created_at) \
         VALUES ('Shipment', {s}, {id}, 4, 'scan', 'in_transit', 'in_transit', 'carrier', \
             FALSE, 'h', '2026-03-02T10:00:00Z')"
    );
    raw.refuses(&gapped, "seq must follow").await;
    assert_eq!(ok!(store.entity_trail("Shipment", shipment.0)), before);
    assert_verified(&*store).await;
}

pub(super) async fn shipments_are_found_by_id_and_tracking_number(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let id = new_order(&*store, "ann@x.com", &[("A", 3), ("B", 1)])
        .await
        .id;
    let items = ok!(store.items(id));
    let lines = [(items[0].id, 2), (items[1].id, 1)];
    let mut tx = ok!(store.begin());
    let first = ok!(tx.insert_shipment(id, "dhl", Some("T-1"), &lines, at(1)));
    let untracked = ok!(tx.insert_shipment(id, "ups", None, &[(items[0].id, 1)], at(2)));
    ok!(tx.commit());
    let parcels = ok!(store.shipments(id));
    let [first_parcel, untracked_parcel] = [0, 1].map(|i| parcels[i].clone());
    assert_eq!((first_parcel.id, untracked_parcel.id), (first, untracked));

    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.lock_shipment(first)), Some(first_parcel.clone()));
    assert_eq!(
        ok!(tx.lock_shipment(untracked)),
        Some(untracked_parcel.clone())
    );
    assert_eq!(ok!(tx.lock_shipment(ShipmentId(999_999))), None);
    let found = ok!(tx.shipment_by_tracking("T-1"));
    assert_eq!(found, Some(first_parcel.clone()), "with its lines");
    assert_eq!(ok!(tx.shipment_by_tracking("T-2")), None);
    assert_eq!(ok!(tx.shipment_by_tracking("")), None);
    ok!(tx.rollback());

    // A tracking number used twice finds the newest parcel.
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    let again = ship(&*store, other, Some("T-1")).await;
    let mut tx = ok!(store.begin());
    let found = ok!(tx.shipment_by_tracking("T-1")).expect("a parcel");
    assert_eq!(
        (found.id, found.order, found.state.as_str()),
        (again, other, "label_created")
    );
    ok!(tx.rollback());
}

pub(super) async fn set_shipped_sets_a_lines_shipped_quantity(store: Arc<dyn Store>, _raw: RawSql) {
    catalog(&*store).await;
    let id = new_order(&*store, "ann@x.com", &[("A", 3), ("B", 1)])
        .await
        .id;
    let items = ok!(store.items(id));
    let (line_a, line_b) = (items[0].id, items[1].id);
    let mut tx = ok!(store.begin());
    ok!(tx.insert_shipment(id, "dhl", None, &[(line_a, 3), (line_b, 1)], at(1)));
    ok!(tx.set_returned(line_a, 1));
    // A cancelled parcel's units no longer count as shipped.
    ok!(tx.set_shipped(line_a, 2));
    ok!(tx.set_shipped(line_b, 0));
    ok!(tx.commit());
    let shipped = |items: &[OrderItem]| -> Vec<(i64, i64)> {
        items
            .iter()
            .map(|i| (i.qty_shipped, i.qty_returned))
            .collect()
    };
    assert_eq!(shipped(&ok!(store.items(id))), [(2, 1), (0, 0)]);

    let mut tx = ok!(store.begin());
    for (item, qty, what) in [
        (line_a, 0, "fewer shipped than returned"),
        (line_a, 4, "more shipped than ordered"),
        (line_b, -1, "a negative quantity"),
        (ItemId(999_999), 1, "a line that does not exist"),
    ] {
        assert_invalid(tx.set_shipped(item, qty).await, what);
    }
    ok!(tx.set_shipped(line_b, 1));
    ok!(tx.commit());
    assert_eq!(shipped(&ok!(store.items(id))), [(2, 1), (1, 0)]);
}

pub(super) async fn verify_reports_a_tampered_shipment_state(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    let id = parcels(&*store).await;
    let tampered = ship(&*store, id, Some("T-1")).await;
    let gapped = ship(&*store, id, Some("T-2")).await;
    // A parcel without a trail (as before the trail existed) is not checked.
    let untracked = ship(&*store, id, None).await;
    journey(&*store, tampered, &[PICK_UP, DISPATCH]).await;
    journey(&*store, gapped, &[PICK_UP, SCAN, SCAN]).await;
    let s = untracked.0;
    ok!(raw.exec(format!(
        "UPDATE shipments SET state = 'lost' WHERE id = {s}"
    )));
    assert_verified(&*store).await;

    let s = tampered.0;
    ok!(raw.exec(format!(
        "UPDATE shipments SET state = 'delivered' WHERE id = {s}"
    )));
    let findings = ok!(store.verify());
    assert_eq!(
        checks(&findings),
        ["shipment_matches_trail"],
        "{findings:#?}"
    );
    let detail = &findings[0].detail;
    let named = detail.contains(&format!("shipment {s}")) && detail.contains("out_for_delivery");
    assert!(named, "{findings:?}");

    // And a gap in an entity's trail.
    raw.lift_entity_guard().await;
    let g = gapped.0;
    let sql = format!("UPDATE entity_transitions SET seq = 7 WHERE entity_id = {g} AND seq = 2");
    ok!(raw.exec(sql));
    let findings = ok!(store.verify());
    let mut found = checks(&findings);
    found.sort_unstable();
    assert_eq!(found, ["entity_trail_sequence", "shipment_matches_trail"]);
    let gap = findings.iter().find(|f| f.check == "entity_trail_sequence");
    let named = gap.is_some_and(|f| f.detail.contains(&format!("Shipment {g}")));
    assert!(named, "{findings:?}");
}
