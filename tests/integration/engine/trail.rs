//! What the trail keeps: overrides marked as such, replayed commands, notifications
//! delivered after commit, and all of it across connections to a database file.

use chrono::TimeDelta;
use order_core::order::{Event, Guard, Notification, Reason, State};
use order_core::{Actor, FireError};

use super::harness::{ADMIN, SUPPORT, Shop};
use super::lifecycle::{command, notifications, stock};

#[tokio::test]
async fn overrides_need_staff_a_reason_and_their_guard_and_are_marked() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Delivered).await;
    let returned = || {
        command(Event::ReturnDelivered, Actor::support(SUPPORT)).reason(Reason::DamagedInTransit)
    };
    shop.clock.advance(TimeDelta::days(31));
    let late = shop.engine.fire(id, returned()).await;
    assert!(matches!(
        late,
        Err(FireError::GuardFailed {
            guard: Guard::WithinReturnWindow,
            ..
        })
    ));
    shop.clock.advance(TimeDelta::days(-2));
    let outcome = shop
        .engine
        .fire(id, returned())
        .await
        .expect("within 30 days");
    assert!(outcome.is_override);
    let last = shop
        .store
        .history(id)
        .await
        .expect("readable")
        .pop()
        .expect("a row");
    assert!(last.is_override);
    assert_eq!(
        notifications(&shop, id).await.last().map(String::as_str),
        Some(Notification::ReturnAuthorized.as_str())
    );

    let cancelled = shop.order_in(State::Cancelled).await;
    let reopen = |actor| command(Event::Reopen, actor).reason(Reason::Goodwill);
    let support = shop
        .engine
        .fire(cancelled, reopen(Actor::support(SUPPORT)))
        .await;
    assert!(
        matches!(support, Err(FireError::ActorNotAllowed { .. })),
        "{support:?}"
    );
    shop.engine
        .fire(cancelled, reopen(Actor::admin(ADMIN)))
        .await
        .expect("reopened");
    assert_eq!(shop.state(cancelled).await, State::Pending);

    let refunded = shop.order_in(State::Refunded).await;
    let reverse =
        || command(Event::ReverseRefund, Actor::admin(ADMIN)).reason(Reason::RefundReversed);
    let early = shop.engine.fire(refunded, reverse()).await;
    assert!(matches!(
        early,
        Err(FireError::GuardFailed {
            guard: Guard::RefundReversedByProcessor,
            ..
        })
    ));
    shop.engine
        .refund_reversed(refunded)
        .await
        .expect("reported");
    shop.engine
        .fire(refunded, reverse())
        .await
        .expect("back to paid");
    assert_eq!(shop.state(refunded).await, State::Paid);
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_command_with_a_seen_key_replays_its_outcome() {
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Pending).await;
    let confirm = || command(Event::Confirm, Actor::system()).key("confirm-once");
    let first = shop.engine.fire(id, confirm()).await.expect("confirmed");
    let again = shop.engine.fire(id, confirm()).await.expect("replayed");
    assert!(!first.replayed && again.replayed);
    assert_eq!((again.seq, again.to), (first.seq, first.to));
    assert_eq!(shop.store.history(id).await.expect("readable").len(), 1);
    assert_eq!(stock(&shop, "WIDGET").await, (1_000, 2));
}

#[tokio::test]
async fn notifications_are_delivered_after_commit_at_least_once() {
    use order_core::outbox::{Dispatcher, RecordingNotifier};
    let shop = Shop::memory().await;
    let id = shop.order_in(State::Paid).await;
    let notifier = std::sync::Arc::new(RecordingNotifier::new());
    notifier.fail_next(1);
    let dispatcher = Dispatcher::new(shop.store.clone(), notifier.clone());
    let now = order_core::clock::Clock::now(shop.clock.as_ref());
    dispatcher.run_until_idle(now).await.expect("runs");
    let later = now + TimeDelta::hours(1);
    dispatcher.run_until_idle(later).await.expect("runs");
    let delivered: Vec<String> = notifier
        .delivered()
        .iter()
        .map(|m| m.dedupe_key.clone())
        .collect();
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    assert!(delivered.contains(&format!("order:{id}:1:order_confirmed")));
    assert!(delivered.contains(&format!("order:{id}:2:payment_received")));
    let payment = shop.store.payments(id).await.expect("readable")[0].id;
    assert!(delivered.contains(&format!("payment:{payment}:1:payment_authorized")));
    assert!(delivered.contains(&format!("payment:{payment}:2:payment_captured")));
    let messages = shop.store.messages(id).await.expect("readable");
    assert!(messages.iter().all(|m| m.delivered_at.is_some()));
    assert_eq!(notifier.failures(), 1);
}

#[tokio::test]
async fn a_shared_database_keeps_everything_across_connections() {
    let shop = Shop::file().await;
    let id = shop.order_in(State::Shipped).await;
    let url = shop.url.as_deref().expect("a shared database has a URL");
    let reopened = super::harness::connect(url).await;
    reopened
        .migrate()
        .await
        .expect("migrating twice is harmless");
    let order = reopened
        .order(id)
        .await
        .expect("readable")
        .expect("still there");
    assert_eq!(order.state, State::Shipped);
    assert_eq!(reopened.history(id).await.expect("readable").len(), 4);
    assert!(reopened.verify().await.expect("runs").is_empty());
}
