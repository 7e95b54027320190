//! Parcels run `shipment.fsm` through the engine: the carrier's steps, staff overrides,
//! the units a cancelled, returned or lost parcel gives back, each parcel's own audit
//! trail, and carrier webhooks through the inbox, duplicated and out of order.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use order_core::carrier::{
    CarrierCall, CarrierEvent, CarrierEventKind, CarrierSimulator, CarrierSimulatorConfig,
};
use order_core::clock::Clock as _;
use order_core::engine::machine::Refusal;
use order_core::engine::{ShipmentCommand, ShipmentError, ShipmentLine};
use order_core::order::{Event as OrderEvent, State as OrderState};
use order_core::shipment::{ActorKind as By, Event, Guard, Reason, State};
use order_core::{FulfillmentStatus, OrderId, ShipmentId};

use super::harness::{ADMIN, SUPPORT, Shop};

/// An order in processing, with an address, and one parcel of every unit (its label
/// made by the shop's carrier, when it has one).
async fn parcel(shop: &Shop) -> (OrderId, ShipmentId) {
    let id = shop.order().await;
    shop.engine
        .change_address(id, "1 Main Street")
        .await
        .expect("an address in pending");
    shop.drive(id, OrderState::Processing).await;
    let lines = every_unit(shop, id).await;
    let shipment = shop
        .engine
        .add_shipment(id, &lines, "dhl", None)
        .await
        .expect("the parcel is added");
    (id, shipment)
}

/// One line per order line, with all its units.
async fn every_unit(shop: &Shop, id: OrderId) -> Vec<ShipmentLine> {
    let items = shop.store.items(id).await.expect("readable");
    items
        .iter()
        .map(|i| ShipmentLine {
            item: i.id,
            quantity: i.quantity,
        })
        .collect()
}

fn carrier(event: Event) -> ShipmentCommand {
    ShipmentCommand::new(event, By::Carrier)
}

async fn state_of(shop: &Shop, id: OrderId, shipment: ShipmentId) -> String {
    let parcels = shop.store.shipments(id).await.expect("readable");
    let parcel = parcels.iter().find(|p| p.id == shipment).expect("exists");
    parcel.state.clone()
}

async fn fire(shop: &Shop, id: OrderId, shipment: ShipmentId, command: ShipmentCommand) {
    shop.engine
        .fire_shipment(id, shipment, &command)
        .await
        .unwrap_or_else(|err| panic!("{:?} refused: {err}", command.event));
}

async fn stock(shop: &Shop, sku: &str) -> (i64, i64) {
    let product = shop
        .store
        .product(sku)
        .await
        .expect("readable")
        .expect("exists");
    (product.on_hand, product.reserved)
}

fn saturday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_parcel_goes_from_label_to_delivered_with_a_trail_of_its_own() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    assert_eq!(state_of(&shop, id, shipment).await, "label_created");

    // The carrier picks up only in its hours.
    let weekend = shop
        .engine
        .fire_shipment(id, shipment, &carrier(Event::PickUp).at(saturday()))
        .await;
    assert!(
        matches!(
            weekend,
            Err(ShipmentError::Refused(Refusal::OutsideWindow {
                calendar: "carrier_pickup",
                next_open: Some(_),
                ..
            }))
        ),
        "{weekend:?}"
    );
    for event in [
        Event::PickUp,
        Event::Scan,
        Event::Scan,
        Event::Dispatch,
        Event::Deliver,
    ] {
        fire(&shop, id, shipment, carrier(event)).await;
    }
    assert_eq!(state_of(&shop, id, shipment).await, "delivered");
    let parcels = shop.store.shipments(id).await.expect("readable");
    assert_eq!(parcels[0].delivered_at, Some(shop.clock.now()));

    let trail = shop
        .store
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("readable");
    let steps: Vec<(i64, &str, &str, &str)> = trail
        .iter()
        .map(|r| (r.seq, r.event.as_str(), r.from.as_str(), r.to.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (1, "pick_up", "label_created", "in_transit"),
            (2, "scan", "in_transit", "in_transit"),
            (3, "scan", "in_transit", "in_transit"),
            (4, "dispatch", "in_transit", "out_for_delivery"),
            (5, "deliver", "out_for_delivery", "delivered"),
        ]
    );
    assert!(
        trail
            .iter()
            .all(|r| r.order == id && r.actor_kind == "carrier")
    );
    // The order's own trail is untouched until the order follows.
    assert_eq!(shop.state(id).await, OrderState::Processing);
    let shipped = shop
        .engine
        .follow_parcels(id)
        .await
        .expect("the order ships");
    assert_eq!(shipped.to, OrderState::Shipped);
    let delivered = shop
        .engine
        .follow_parcels(id)
        .await
        .expect("and is delivered");
    assert_eq!(delivered.to, OrderState::Delivered);
    assert!(shop.engine.follow_parcels(id).await.is_none());
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.fulfillment_status, FulfillmentStatus::Delivered);
    // The transition's notifications are in the outbox.
    let kinds: Vec<String> = shop
        .store
        .messages(id)
        .await
        .expect("readable")
        .into_iter()
        .map(|m| m.kind)
        .collect();
    for kind in [
        "shipment_picked_up",
        "out_for_delivery",
        "shipment_delivered",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_cancelled_label_is_voided_and_its_units_go_back_on_the_shelf() {
    let sim = Arc::new(CarrierSimulator::new(CarrierSimulatorConfig::reliable()));
    let shop = Shop::memory().await.with_carrier(sim.clone());
    let before = stock(&shop, "WIDGET").await;
    let (id, shipment) = parcel(&shop).await;
    let tracking = shop.store.shipments(id).await.expect("readable")[0]
        .tracking_number
        .clone()
        .expect("the carrier made the label");
    // Confirmed (reserved), then shipped (off the shelf and out of the reservation).
    assert_eq!(stock(&shop, "WIDGET").await, (before.0 - 2, before.1));

    // Staff must say why; then the label is voided at the carrier.
    let bare = ShipmentCommand::new(Event::Cancel, By::Support).by(SUPPORT);
    let refused = shop.engine.fire_shipment(id, shipment, &bare).await;
    assert!(matches!(
        refused,
        Err(ShipmentError::Refused(Refusal::ReasonRequired { .. }))
    ));
    let cancel = bare.reason(Reason::CustomerRequest);
    fire(&shop, id, shipment, cancel).await;
    assert_eq!(state_of(&shop, id, shipment).await, "cancelled");
    assert!(
        sim.calls()
            .iter()
            .any(|(call, key)| *call == CarrierCall::VoidLabel
                && key.contains(&shipment.to_string()))
    );
    assert!(sim.journey(&tracking).is_some());
    // Back on the shelf and held for the order again; nothing counts as shipped.
    assert_eq!(stock(&shop, "WIDGET").await, (before.0, before.1 + 2));
    let items = shop.store.items(id).await.expect("readable");
    assert!(items.iter().all(|i| i.qty_shipped == 0));
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.fulfillment_status, FulfillmentStatus::Unfulfilled);
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_label_the_carrier_scanned_cannot_be_cancelled() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    fire(&shop, id, shipment, carrier(Event::PickUp)).await;
    let cancel = ShipmentCommand::new(Event::Cancel, By::System);
    let refused = shop.engine.fire_shipment(id, shipment, &cancel).await;
    assert!(
        matches!(
            &refused,
            Err(ShipmentError::Refused(Refusal::InvalidTransition {
                state: State::InTransit,
                ..
            }))
        ),
        "{refused:?}"
    );
    // A role the principal does not hold is refused before anything is read.
    let impostor = ShipmentCommand::new(Event::Recover, By::Admin)
        .by(SUPPORT)
        .reason(Reason::FoundAfterLoss);
    assert!(matches!(
        shop.engine.fire_shipment(id, shipment, &impostor).await,
        Err(ShipmentError::MissingRole { .. })
    ));
}

#[tokio::test]
async fn a_lost_parcel_needs_silent_tracking_and_can_be_recovered() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    let before = stock(&shop, "WIDGET").await;
    fire(&shop, id, shipment, carrier(Event::PickUp)).await;
    let lost = carrier(Event::ReportLost).reason(Reason::LostInTransit);
    let early = shop.engine.fire_shipment(id, shipment, &lost).await;
    assert!(
        matches!(
            early,
            Err(ShipmentError::Refused(Refusal::GuardFailed {
                guard: Guard::TrackingSilentForWindow,
                value: false,
                ..
            }))
        ),
        "{early:?}"
    );
    shop.clock.advance(TimeDelta::days(3));
    fire(&shop, id, shipment, lost).await;
    assert_eq!(state_of(&shop, id, shipment).await, "lost");
    // The units are gone: nothing back on the shelf, and they may ship anew.
    assert_eq!(stock(&shop, "WIDGET").await, before);
    let items = shop.store.items(id).await.expect("readable");
    assert!(items.iter().all(|i| i.qty_shipped == 0));

    let recover = ShipmentCommand::new(Event::Recover, By::Admin)
        .by(ADMIN)
        .reason(Reason::FoundAfterLoss);
    fire(&shop, id, shipment, recover).await;
    assert_eq!(state_of(&shop, id, shipment).await, "in_transit");
    let items = shop.store.items(id).await.expect("readable");
    assert!(items.iter().all(|i| i.qty_shipped == i.quantity));
    let trail = shop
        .store
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("readable");
    assert!(trail.last().expect("rows").is_override);
    let kinds: Vec<String> = shop
        .store
        .messages(id)
        .await
        .expect("readable")
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert!(kinds.iter().any(|k| k == "carrier_claim_opened"));
    assert!(kinds.iter().any(|k| k == "carrier_claim_withdrawn"));
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_parcel_returns_to_the_sender_after_the_last_failed_attempt() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    let before = stock(&shop, "WIDGET").await;
    fire(&shop, id, shipment, carrier(Event::PickUp)).await;
    let failed = carrier(Event::AttemptFailed).reason(Reason::Other);
    let back = carrier(Event::ReturnToSender).reason(Reason::AddressUndeliverable);
    for attempt in 1..=3 {
        fire(&shop, id, shipment, carrier(Event::Dispatch)).await;
        fire(&shop, id, shipment, failed.clone()).await;
        let result = shop.engine.fire_shipment(id, shipment, &back).await;
        if attempt < 3 {
            assert!(
                matches!(
                    result,
                    Err(ShipmentError::Refused(Refusal::GuardFailed {
                        guard: Guard::AddressDeliverable,
                        ..
                    }))
                ),
                "attempt {attempt}: {result:?}"
            );
        } else {
            result.expect("returned after three attempts");
        }
    }
    assert_eq!(state_of(&shop, id, shipment).await, "returned_to_sender");
    // Back in the warehouse and held for the order, ready to ship again.
    assert_eq!(stock(&shop, "WIDGET").await, (before.0 + 2, before.1 + 2));
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.fulfillment_status, FulfillmentStatus::Unfulfilled);
    shop.assert_verified().await;
}

fn event(tracking: &str, sequence: u32, kind: CarrierEventKind, at: DateTime<Utc>) -> CarrierEvent {
    CarrierEvent {
        external_id: format!("evt_{tracking}_{sequence}"),
        tracking_number: tracking.to_owned(),
        kind,
        reason: None,
        occurred_at: at,
        sequence,
    }
}

#[tokio::test]
async fn webhooks_apply_once_and_in_the_carriers_order() {
    let shop = Shop::memory().await;
    let id = shop.order_in(OrderState::Processing).await;
    let lines = every_unit(&shop, id).await;
    let shipment = shop
        .engine
        .add_shipment(id, &lines, "dhl", Some("TRACK-9"))
        .await
        .expect("added");
    let at = shop.clock.now();
    let hour = TimeDelta::hours(1);
    let deliver = event("TRACK-9", 3, CarrierEventKind::Deliver, at + hour * 3);
    let dispatch = event("TRACK-9", 2, CarrierEventKind::Dispatch, at + hour * 2);
    let pick_up = event("TRACK-9", 1, CarrierEventKind::PickUp, at);
    // Deliver and dispatch first, the dispatch twice: deliver waits for its turn.
    for (webhook, new) in [(&deliver, true), (&dispatch, true), (&dispatch, false)] {
        assert_eq!(
            shop.engine
                .receive_carrier_event(webhook)
                .await
                .expect("kept"),
            new
        );
    }
    let first = shop.engine.process_carrier_inbox().await.expect("runs");
    assert_eq!((first.applied, first.waiting), (0, 2), "{first:?}");
    assert_eq!(state_of(&shop, id, shipment).await, "label_created");

    assert!(
        shop.engine
            .receive_carrier_event(&pick_up)
            .await
            .expect("kept")
    );
    let unknown = event("NOPE", 1, CarrierEventKind::PickUp, at);
    shop.engine
        .receive_carrier_event(&unknown)
        .await
        .expect("kept");
    let second = shop.engine.process_carrier_inbox().await.expect("runs");
    assert_eq!(
        (second.applied, second.refused, second.waiting),
        (3, 1, 0),
        "{second:?}"
    );
    assert_eq!(
        second.orders_followed, 2,
        "shipped, then delivered: {second:?}"
    );
    assert_eq!(state_of(&shop, id, shipment).await, "delivered");
    assert_eq!(shop.state(id).await, OrderState::Delivered);
    let trail = shop
        .store
        .entity_trail("Shipment", shipment.0)
        .await
        .expect("readable");
    let external: Vec<Option<&str>> = trail.iter().map(|r| r.external_id.as_deref()).collect();
    assert_eq!(
        external,
        [
            Some("evt_TRACK-9_1"),
            Some("evt_TRACK-9_2"),
            Some("evt_TRACK-9_3")
        ]
    );
    // A copy that arrives after its event was applied is stale.
    let late = CarrierEvent {
        external_id: "evt_TRACK-9_2_resent".into(),
        ..dispatch.clone()
    };
    shop.engine
        .receive_carrier_event(&late)
        .await
        .expect("kept");
    let third = shop.engine.process_carrier_inbox().await.expect("runs");
    assert_eq!((third.applied, third.stale), (0, 1));
    let inbox = shop.store.inbox("carrier").await.expect("readable");
    assert_eq!(inbox.len(), 5);
    assert!(inbox.iter().all(|m| m.processed_at.is_some()));
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_seeded_carrier_drives_every_parcel_to_the_end_of_its_journey() {
    let config = CarrierSimulatorConfig {
        duplicate_rate: 0.3,
        reorder_rate: 0.5,
        lost_rate: 0.2,
        failed_attempt_rate: 0.3,
        ..CarrierSimulatorConfig::default().with_seed(7)
    };
    let sim = Arc::new(CarrierSimulator::new(config));
    let shop = Shop::memory().await.with_carrier(sim.clone());
    let mut parcels = Vec::new();
    for _ in 0..12 {
        let (id, shipment) = parcel(&shop).await;
        parcels.push((id, shipment));
    }
    let (mut received, mut duplicates) = (0, 0);
    for _ in 0..60 {
        shop.clock.advance(TimeDelta::hours(6));
        for webhook in sim.events_until(shop.clock.now()) {
            received += 1;
            if !shop
                .engine
                .receive_carrier_event(&webhook)
                .await
                .expect("kept")
            {
                duplicates += 1;
            }
        }
        shop.engine.process_carrier_inbox().await.expect("runs");
    }
    assert!(duplicates > 0, "{received} received, none twice");
    let mut endings = std::collections::BTreeSet::new();
    for (id, shipment) in parcels {
        let parcel = shop.store.shipments(id).await.expect("readable");
        let tracking = parcel[0].tracking_number.clone().expect("labelled");
        let journey = sim.journey(&tracking).expect("the carrier knows it");
        let last = journey.last().expect("a journey has events");
        let expected = match last.kind {
            CarrierEventKind::Deliver => "delivered",
            CarrierEventKind::ReturnToSender => "returned_to_sender",
            CarrierEventKind::ReportLost => "lost",
            other => panic!("a journey ends in {other}"),
        };
        assert_eq!(state_of(&shop, id, shipment).await, expected, "{tracking}");
        endings.insert(expected);
        let trail = shop
            .store
            .entity_trail("Shipment", shipment.0)
            .await
            .expect("readable");
        let inbox = shop.store.inbox("carrier").await.expect("readable");
        let outcomes: Vec<_> = inbox
            .iter()
            .filter(|m| m.external_id.contains(&tracking))
            .map(|m| (m.external_id.clone(), m.outcome.clone()))
            .collect();
        assert_eq!(
            trail.len(),
            journey.len(),
            "every event once: {tracking}: {outcomes:?} {journey:#?}"
        );
        let order = shop.state(id).await;
        let follows = match expected {
            "delivered" => OrderState::Delivered,
            // Nothing reached the customer: the order comes back as a whole.
            "returned_to_sender" | "lost" => OrderState::Returned,
            _ => OrderState::Shipped,
        };
        assert_eq!(order, follows, "{tracking}");
    }
    assert!(
        endings.len() >= 2,
        "the seed ends journeys in only {endings:?}"
    );
    let pending = shop.store.inbox("carrier").await.expect("readable");
    assert!(pending.iter().all(|m| m.processed_at.is_some()));
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_order_whose_parcels_all_came_back_is_returned_and_refunded() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    let before = stock(&shop, "WIDGET").await;
    fire(&shop, id, shipment, carrier(Event::PickUp)).await;
    let shipped = shop.engine.follow_parcels(id).await.expect("ships");
    assert_eq!(shipped.to, OrderState::Shipped);
    fire(&shop, id, shipment, carrier(Event::Dispatch)).await;
    // The carrier finds the address undeliverable: no point in trying again.
    let undeliverable = Reason::AddressUndeliverable;
    fire(
        &shop,
        id,
        shipment,
        carrier(Event::AttemptFailed).reason(undeliverable),
    )
    .await;
    fire(
        &shop,
        id,
        shipment,
        carrier(Event::ReturnToSender).reason(undeliverable),
    )
    .await;
    let returned = shop.engine.follow_parcels(id).await.expect("comes back");
    assert_eq!(returned.to, OrderState::Returned);
    // Back on the shelf, and not held: the order will not ship again.
    assert_eq!(stock(&shop, "WIDGET").await, (before.0 + 2, before.1));
    let refund = order_core::Command::new(
        order_core::order::Event::Refund,
        order_core::Actor::system(),
    );
    let refunded = shop
        .engine
        .fire(id, refund)
        .await
        .expect("nothing is at the customer's");
    assert_eq!(refunded.to, OrderState::Refunded);
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, order_core::PaymentStatus::Refunded);
    assert_eq!(stock(&shop, "WIDGET").await, (before.0 + 2, before.1));
    shop.assert_verified().await;
}

#[tokio::test]
async fn an_order_whose_only_parcel_was_lost_comes_back_and_is_refunded() {
    let shop = Shop::memory().await;
    let (id, shipment) = parcel(&shop).await;
    let before = stock(&shop, "WIDGET").await;
    fire(&shop, id, shipment, carrier(Event::PickUp)).await;
    shop.engine.follow_parcels(id).await.expect("ships");
    shop.clock.advance(TimeDelta::days(3));
    let lost = carrier(Event::ReportLost).reason(Reason::LostInTransit);
    fire(&shop, id, shipment, lost).await;
    let back = shop.engine.follow_parcels(id).await.expect("comes back");
    assert_eq!(
        (back.event, back.to),
        (OrderEvent::ReturnToSender, OrderState::Returned)
    );
    let history = shop.store.history(id).await.expect("readable");
    let last = history.last().expect("rows");
    assert_eq!(last.reason, Some(order_core::order::Reason::LostInTransit));
    // The units are gone: nothing was put back on the shelf.
    assert_eq!(stock(&shop, "WIDGET").await, before);
    let refund = order_core::Command::new(OrderEvent::Refund, order_core::Actor::system());
    let refunded = shop.engine.fire(id, refund).await.expect("refunded");
    assert_eq!(refunded.to, OrderState::Refunded);
    shop.assert_verified().await;
}
