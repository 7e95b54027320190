//! The rules of order.fsm one by one, each shown through the engine on a real database:
//! who may fire, reasons, windows, guards, actions, hooks, overrides and the trail.

use order_core::order::{ActorKind, Event, Guard, Reason, State};
use order_core::payment::{Call, PaymentError, PaymentProcessor as _};
use order_core::{Actor, Command, FireError, PaymentStatus, Step};

use super::harness::{ADMIN, CUSTOMER, SUPPORT, Shop};

pub(super) fn command(event: Event, actor: Actor) -> Command {
    Command::new(event, actor)
}

pub(super) async fn stock(shop: &Shop, sku: &str) -> (i64, i64) {
    let product = shop
        .store
        .product(sku)
        .await
        .expect("readable")
        .expect("the product exists");
    (product.on_hand, product.reserved)
}

pub(super) async fn notifications(shop: &Shop, id: order_core::OrderId) -> Vec<String> {
    let messages = shop.store.messages(id).await.expect("readable");
    messages.into_iter().map(|m| m.kind).collect()
}

#[tokio::test]
async fn a_whole_order_goes_from_pending_to_delivered() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Delivered).await;
    let history = shop.store.history(id).await.expect("readable");
    let trail: Vec<(u32, State, State)> = history
        .iter()
        .map(|t| (t.seq as u32, t.from, t.to))
        .collect();
    assert_eq!(
        trail,
        [
            (1, State::Pending, State::Confirmed),
            (2, State::Confirmed, State::Paid),
            (3, State::Paid, State::Processing),
            (4, State::Processing, State::Shipped),
            (5, State::Shipped, State::Delivered),
        ]
    );
    assert!(
        history
            .iter()
            .all(|t| t.machine_hash.len() == 64 && !t.is_override)
    );
    assert_eq!(
        notifications(&shop, id).await,
        [
            "order_confirmed",
            // The payment's own, on the order's outbox: authorized before `pay`,
            // captured by it.
            "payment_authorized",
            "payment_captured",
            "payment_received",
            "processing_started",
            "order_shipped",
            // The parcel's own, on the order's outbox.
            "shipment_picked_up",
            "out_for_delivery",
            "shipment_delivered",
            "order_delivered"
        ]
    );
    // Two widgets and a gadget left the shelf; nothing stays reserved.
    assert_eq!(stock(&shop, "WIDGET").await, (998, 0));
    assert_eq!(stock(&shop, "GADGET").await, (499, 0));
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Captured);
    assert_eq!(
        order.fulfillment_status,
        order_core::FulfillmentStatus::Delivered
    );
    assert_eq!(shop.payments.total_captured(), order.total_cents);
    shop.assert_verified().await;
}

#[tokio::test]
async fn confirming_reserves_stock_and_never_oversells() {
    let shop = Shop::memory().await;
    let first = shop.order_of(&[("SCARCE", 1)]).await;
    let second = shop.order_of(&[("SCARCE", 1)]).await;
    shop.fire(first, Event::Confirm, Actor::system()).await;
    assert_eq!(stock(&shop, "SCARCE").await, (1, 1));
    let refused = shop
        .engine
        .fire(second, command(Event::Confirm, Actor::system()))
        .await;
    assert!(
        matches!(
            refused,
            Err(FireError::GuardFailed {
                guard: Guard::InventoryAvailable,
                value: false,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(shop.state(second).await, State::Pending);
    // Cancelling the first releases its unit, and the second can have it.
    shop.fire(first, Event::Cancel, Actor::customer(CUSTOMER))
        .await;
    assert_eq!(stock(&shop, "SCARCE").await, (1, 0));
    shop.fire(second, Event::Confirm, Actor::system()).await;
    assert_eq!(stock(&shop, "SCARCE").await, (1, 1));
    shop.assert_verified().await;
}

#[tokio::test]
async fn paying_needs_an_authorization_without_a_fraud_hold() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let pay = || command(Event::Pay, Actor::customer(CUSTOMER));
    let refused = shop.engine.fire(id, pay()).await;
    assert!(matches!(
        refused,
        Err(FireError::GuardFailed {
            guard: Guard::PaymentAuthorized,
            value: false,
            ..
        })
    ));

    shop.engine.authorize_payment(id).await.expect("runs");
    let outcome = shop.engine.fire(id, pay()).await.expect("paid");
    assert_eq!(outcome.to, State::Paid);
    let payments = shop.store.payments(id).await.expect("readable");
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].state, "captured");
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_payment_under_review_is_held() {
    let (store, dir) = super::harness::fresh_store().await;
    let config = order_core::payment::SimulatorConfig {
        review_rate: 1.0,
        ..Default::default()
    };
    let shop = Shop::with_store(store, dir, config).await;
    let id = shop.order_in(State::Confirmed).await;
    shop.engine.authorize_payment(id).await.expect("runs");
    let refused = shop
        .engine
        .fire(id, command(Event::Pay, Actor::customer(CUSTOMER)))
        .await;
    let Err(FireError::GuardFailed {
        guard,
        value,
        expression,
        ..
    }) = refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!((guard, value), (Guard::FraudHold, true));
    assert_eq!(expression, "payment_authorized and not fraud_hold");
    assert_eq!(shop.payments.total_captured(), 0);
}

#[tokio::test]
async fn after_three_declines_the_system_cancels_with_a_reason() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let cancel = || command(Event::Cancel, Actor::system()).reason(Reason::PaymentFailed);
    for attempt in 1..=3 {
        let refused = shop.engine.fire(id, cancel()).await;
        assert!(
            matches!(
                refused,
                Err(FireError::GuardFailed {
                    guard: Guard::PaymentAttemptsExhausted,
                    ..
                })
            ),
            "after {} declines: {refused:?}",
            attempt - 1
        );
        shop.payments.fail_next(
            Call::Authorize,
            PaymentError::Declined {
                code: "card_declined".into(),
            },
        );
        let declined = shop.engine.authorize_payment(id).await.expect("runs");
        assert_eq!(declined.outcome, "declined");
        // The last allowed attempt failed: the system cancels at once.
        assert_eq!(declined.order_cancelled, attempt == 3, "attempt {attempt}");
    }
    let payments = shop.store.payments(id).await.expect("readable");
    assert!(
        payments
            .iter()
            .all(|p| p.state == "failed" && p.failure_code.as_deref() == Some("card_declined"))
    );
    assert_eq!(payments.len(), 3, "every declined attempt is on record");
    assert_eq!(shop.state(id).await, State::Cancelled);
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 0));
    let history = shop.store.history(id).await.expect("readable");
    assert_eq!(
        history.last().and_then(|t| t.reason),
        Some(Reason::PaymentFailed)
    );
    assert_eq!(
        notifications(&shop, id).await.last().map(String::as_str),
        Some("order_cancelled")
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn cancelling_voids_the_authorization_and_releases_stock() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Confirmed).await;
    let attempt = shop.engine.authorize_payment(id).await.expect("runs");
    shop.fire(id, Event::Cancel, Actor::support(SUPPORT)).await;
    let reference = attempt.payment.processor_ref.expect("a reference");
    let balance = shop.payments.balance(&reference).await.expect("known");
    assert!(balance.voided);
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Voided);
    assert_eq!(stock(&shop, "GADGET").await, (500, 0));
    shop.assert_verified().await;
}

#[tokio::test]
async fn who_may_fire_is_checked_against_owner_role_and_reason() {
    let shop = Shop::memory().await;
    shop.store
        .add_staff("sue", ActorKind::Support)
        .await
        .expect("staff");
    let id = shop.order_in(State::Pending).await;
    let cancel = |actor| command(Event::Cancel, actor);

    let stranger = shop
        .engine
        .fire(id, cancel(Actor::customer("eve@example.com")))
        .await;
    assert!(
        matches!(stranger, Err(FireError::NotOwner { .. })),
        "{stranger:?}"
    );
    let impostor = shop
        .engine
        .fire(id, cancel(Actor::admin("sue")).reason(Reason::Other))
        .await;
    assert!(
        matches!(
            impostor,
            Err(FireError::MissingRole {
                role: ActorKind::Admin,
                ..
            })
        ),
        "{impostor:?}"
    );
    let anonymous = shop
        .engine
        .fire(
            id,
            cancel(Actor {
                kind: ActorKind::Support,
                id: None,
            }),
        )
        .await;
    assert!(
        matches!(anonymous, Err(FireError::MissingPrincipal { .. })),
        "{anonymous:?}"
    );
    let no_reason = shop.engine.fire(id, cancel(Actor::support("sue"))).await;
    let Err(err @ FireError::ReasonRequired { .. }) = no_reason else {
        panic!("{no_reason:?}")
    };
    assert_eq!(err.to_string(), "`cancel` by `support` requires a reason");
    assert_eq!(err.step(), Step::Authorization);
    let carrier = shop.engine.fire(id, cancel(Actor::carrier())).await;
    let Err(err @ FireError::ActorNotAllowed { .. }) = carrier else {
        panic!("{carrier:?}")
    };
    assert_eq!(
        err.to_string(),
        "`carrier` may not fire `cancel` from `pending`; allowed: customer, support, admin"
    );

    shop.engine
        .fire(
            id,
            cancel(Actor::support("sue"))
                .reason(Reason::DuplicateOrder)
                .note("asked by phone"),
        )
        .await
        .expect("cancelled");
    let last = shop
        .store
        .history(id)
        .await
        .expect("readable")
        .pop()
        .expect("a row");
    assert_eq!(
        (last.actor_kind, last.actor_id.as_deref()),
        (ActorKind::Support, Some("sue"))
    );
    assert_eq!(
        (last.reason, last.note.as_deref()),
        (Some(Reason::DuplicateOrder), Some("asked by phone"))
    );
    let attempts = shop.store.attempts(id).await.expect("readable");
    let kinds: Vec<&str> = attempts.iter().map(|a| a.error_kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "authorization:not_owner",
            "authorization:missing_role",
            "authorization:missing_principal",
            "authorization:reason_required",
            "authorization:actor_not_allowed"
        ]
    );
}

#[tokio::test]
async fn an_event_that_does_not_exist_from_a_state_names_the_ones_that_do() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Paid).await;
    let refused = shop
        .engine
        .fire(id, command(Event::Ship, Actor::support(SUPPORT)))
        .await;
    let Err(err) = refused else {
        panic!("shipped a paid order")
    };
    assert_eq!(
        err.to_string(),
        "`ship` is not a transition from `paid`; support may fire: start_processing, refund"
    );
    assert_eq!(err.step(), Step::Candidates);
}

#[tokio::test]
async fn processing_starts_only_in_business_hours() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Paid).await;
    // Saturday 28 November 2026, 14:00 in Berlin: closed since 13:00, open Monday 08:00.
    shop.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-28T13:00:00Z")
            .expect("time")
            .to_utc(),
    );
    let refused = shop
        .engine
        .fire(id, command(Event::StartProcessing, Actor::system()))
        .await;
    let Err(FireError::OutsideWindow {
        calendar,
        next_open,
        ..
    }) = refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!(calendar, "business_hours");
    assert_eq!(
        next_open.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-30T07:00:00+00:00")
    );
    // Christmas Day is closed all day.
    shop.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-12-25T10:00:00Z")
            .expect("time")
            .to_utc(),
    );
    assert!(matches!(
        shop.engine
            .fire(id, command(Event::StartProcessing, Actor::system()))
            .await,
        Err(FireError::OutsideWindow { .. })
    ));
    shop.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-30T07:00:00Z")
            .expect("time")
            .to_utc(),
    );
    shop.fire(id, Event::StartProcessing, Actor::system()).await;
    assert_eq!(shop.state(id).await, State::Processing);
}

#[tokio::test]
async fn shipping_waits_for_every_unit_and_delivery_for_every_parcel() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Processing).await;
    let items = shop.store.items(id).await.expect("readable");
    let widgets = items
        .iter()
        .find(|i| i.sku == "WIDGET")
        .expect("a widget line");
    let first = order_core::engine::ShipmentLine {
        item: widgets.id,
        quantity: 1,
    };
    let parcel = shop
        .engine
        .add_shipment(id, &[first], "dhl", None)
        .await
        .expect("a parcel");
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(
        order.fulfillment_status,
        order_core::FulfillmentStatus::PartiallyShipped
    );
    let refused = shop
        .engine
        .fire(id, command(Event::Ship, Actor::system()))
        .await;
    assert!(matches!(
        refused,
        Err(FireError::GuardFailed {
            guard: Guard::AllItemsShipped,
            ..
        })
    ));
    // A refund is no longer possible once something shipped.
    let refund = shop
        .engine
        .fire(
            id,
            command(Event::Refund, Actor::admin(ADMIN)).reason(Reason::Other),
        )
        .await;
    assert!(matches!(
        refund,
        Err(FireError::GuardFailed {
            guard: Guard::NoItemsShipped,
            ..
        })
    ));

    shop.ship_everything(id).await;
    shop.fire(id, Event::Ship, Actor::system()).await;
    shop.deliver_parcel(id, parcel).await.expect("delivered");
    let early = shop
        .engine
        .fire(id, command(Event::Deliver, Actor::carrier()))
        .await;
    assert!(matches!(
        early,
        Err(FireError::GuardFailed {
            guard: Guard::AllShipmentsDelivered,
            ..
        })
    ));
    for shipment in shop.store.shipments(id).await.expect("readable") {
        shop.deliver_parcel(id, shipment.id)
            .await
            .expect("delivered");
    }
    shop.fire(id, Event::Deliver, Actor::carrier()).await;
    assert_eq!(shop.state(id).await, State::Delivered);
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_refund_returns_the_money_and_the_stock() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Refunded).await;
    assert_eq!(
        shop.payments.total_refunded(),
        shop.payments.total_captured()
    );
    assert!(shop.payments.total_captured() > 0);
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 0));
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(order.payment_status, PaymentStatus::Refunded);
    assert_eq!(
        notifications(&shop, id).await.last().map(String::as_str),
        Some("order_refunded")
    );
    let refunds = shop.store.refunds(id).await.expect("readable");
    assert_eq!(
        refunds.iter().map(|r| r.amount_cents).sum::<i64>(),
        order.total_cents
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn returned_goods_are_restocked_before_the_refund() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Returned).await;
    let early = shop
        .engine
        .fire(id, command(Event::Refund, Actor::system()))
        .await;
    assert!(matches!(
        early,
        Err(FireError::GuardFailed {
            guard: Guard::ReturnReceived,
            ..
        })
    ));
    assert_eq!(stock(&shop, "WIDGET").await, (998, 0));
    shop.engine.receive_return(id).await.expect("received");
    shop.fire(id, Event::Refund, Actor::system()).await;
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 0));
    assert_eq!(stock(&shop, "GADGET").await, (500, 0));
    assert_eq!(
        shop.payments.total_refunded(),
        shop.payments.total_captured()
    );
    shop.assert_verified().await;
}
