//! The payment simulator's events and webhooks: one event per effect, the processor's
//! own doings, and deliveries that are late, duplicated and reordered but reproducible.

use super::*;
use crate::clock::ManualClock;
use chrono::TimeDelta;
use std::collections::BTreeMap;
use std::fmt::Debug;

use ProcessorEventKind::{
    AuthorizationExpired, Authorized, Captured, Chargeback, RefundReversed, Refunded, Voided,
};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a time")
}

fn start() -> DateTime<Utc> {
    at("2026-03-02T10:00:00Z")
}

fn later() -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z")
}

fn rejected_with(result: Result<impl Debug, PaymentError>, needle: &str) -> bool {
    matches!(result, Err(PaymentError::Rejected(m)) if m.contains(needle))
}

/// A simulator on a manual clock at `start()`, and the clock.
fn on_clock(config: SimulatorConfig) -> (Simulator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (Simulator::new(config).with_clock(clock.clone()), clock)
}

/// Webhooks a second to ten minutes late, often twice and often out of order.
fn noisy(seed: u64) -> SimulatorConfig {
    SimulatorConfig {
        webhook_delay: (Duration::from_secs(1), Duration::from_secs(600)),
        duplicate_rate: 0.3,
        reorder_rate: 0.3,
        reorder_hold: Duration::from_secs(2 * 60 * 60),
        keyed: true,
        ..SimulatorConfig::default()
    }
    .with_seed(seed)
}

fn kinds(events: &[ProcessorEvent]) -> Vec<ProcessorEventKind> {
    events.iter().map(|event| event.kind).collect()
}

async fn authorized(sim: &Simulator, key: &str, amount: i64) -> String {
    let auth = sim.authorize(key, amount).await.expect("authorized");
    auth.reference
}

/// Authorizes, captures and partly refunds payment `i`, one minute after another.
async fn pay(sim: &Simulator, clock: &ManualClock, i: usize) -> String {
    let pay = authorized(sim, &format!("order-{i}-authorize"), 1000).await;
    clock.advance(TimeDelta::minutes(1));
    let capture = sim.capture(&format!("order-{i}-capture"), &pay, 1000).await;
    capture.expect("captured");
    clock.advance(TimeDelta::minutes(1));
    let refund = sim.refund(&format!("order-{i}-refund"), &pay, 300).await;
    refund.expect("refunded");
    pay
}

#[tokio::test]
async fn each_effect_is_one_event_and_a_replay_or_a_failure_none() {
    let (sim, clock) = on_clock(SimulatorConfig::default());
    let pay = authorized(&sim, "a1", 1000).await;
    authorized(&sim, "a1", 1000).await;
    assert!(rejected_with(
        sim.capture("c0", &pay, 1001).await,
        "exceeds"
    ));
    sim.fail_next(Call::Capture, PaymentError::Timeout);
    assert_eq!(
        sim.capture("c1", &pay, 600).await,
        Err(PaymentError::Timeout)
    );
    clock.advance(TimeDelta::minutes(5));
    sim.capture("c1", &pay, 600).await.expect("captured");
    sim.capture("c1", &pay, 600).await.expect("replayed");
    sim.succeed_then_timeout_next(Call::Refund);
    let in_doubt = sim.refund("r1", &pay, 250).await;
    assert_eq!(in_doubt, Err(PaymentError::Timeout));
    let refund = sim.refund("r1", &pay, 250).await.expect("replayed");
    assert!(rejected_with(sim.void("v1", &pay).await, "refund it"));
    let voided = authorized(&sim, "a2", 70).await;
    sim.void("v2", &voided).await.expect("voided");
    sim.void("v2", &voided).await.expect("replayed");
    sim.fail_next(Call::Authorize, PaymentError::Declined { code: "x".into() });
    assert!(sim.authorize("a3", 5).await.is_err());

    let events = sim.events(&pay).expect("known");
    assert_eq!(kinds(&events), [Authorized, Captured, Refunded]);
    let amounts: Vec<i64> = events.iter().map(|e| e.amount_cents).collect();
    assert_eq!(amounts, [1000, 600, 250]);
    let ids: Vec<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
    assert_eq!(
        ids,
        [format!("{pay}_1"), format!("{pay}_2"), format!("{pay}_3")].map(|id| format!("evt_{id}"))
    );
    assert!(events.iter().all(|event| event.reference == pay));
    let refunds: Vec<_> = events.iter().map(|e| e.refund_reference.clone()).collect();
    assert_eq!(refunds, [None, None, Some(refund)]);
    let times: Vec<_> = events.iter().map(|e| e.occurred_at).collect();
    let five = start() + TimeDelta::minutes(5);
    assert_eq!(times, [start(), five, five], "the clock's time");
    let void = sim.events(&voided).expect("known");
    assert_eq!(
        (kinds(&void), void[1].amount_cents),
        (vec![Authorized, Voided], 70)
    );
    assert_eq!(sim.events("pay_000009"), None);

    // By default every event is delivered once, in order, when it happens.
    assert!(
        sim.webhooks_until(start() - TimeDelta::seconds(1))
            .is_empty()
    );
    let now = sim.webhooks_until(start());
    assert_eq!((now.len(), &now[0]), (1, &events[0]));
    let rest = sim.webhooks_until(five);
    assert_eq!(rest.len(), 4, "{rest:?}");
    assert_eq!(rest[..2], events[1..]);
    assert_eq!(rest[2..], void[..]);
    assert!(sim.webhooks_until(later()).is_empty(), "each once");
}

#[tokio::test]
async fn sequences_count_per_payment() {
    let (sim, _clock) = on_clock(SimulatorConfig::default());
    let one = authorized(&sim, "a1", 1000).await;
    let two = authorized(&sim, "a2", 1000).await;
    sim.capture("c2", &two, 500).await.expect("captured");
    sim.capture("c1", &one, 500).await.expect("captured");
    sim.capture("c2b", &two, 500).await.expect("captured");
    sim.chargeback(&two, 100).expect("charged back");
    for (pay, count) in [(&one, 2), (&two, 4)] {
        let events = sim.events(pay).expect("known");
        let sequences: Vec<u32> = events.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=count).collect::<Vec<u32>>(), "{pay}");
    }
}

#[tokio::test]
async fn webhooks_come_once_each_and_never_before_they_are_due() {
    let (sim, clock) = on_clock(noisy(3));
    let mut pays = Vec::new();
    let mut stream = Vec::new();
    let poll = |now: DateTime<Utc>, stream: &mut Vec<ProcessorEvent>| {
        for event in sim.webhooks_until(now) {
            assert!(
                now >= event.occurred_at + TimeDelta::seconds(1),
                "early: {event:?}"
            );
            stream.push(event);
        }
    };
    // The shop polls while payments are made, then every twenty seconds.
    for i in 0..12 {
        pays.push(pay(&sim, &clock, i).await);
        poll(clock.now(), &mut stream);
    }
    let mut now = clock.now();
    while now < start() + TimeDelta::hours(12) {
        now += TimeDelta::seconds(20);
        poll(now, &mut stream);
    }
    let mut happened = BTreeMap::new();
    for pay in &pays {
        for event in sim.events(pay).expect("known") {
            happened.insert(event.external_id.clone(), event);
        }
    }
    for event in &stream {
        assert_eq!(happened.get(&event.external_id), Some(event));
    }
    assert!(sim.webhooks_until(later()).is_empty(), "all were delivered");
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &stream {
        *copies.entry(&event.external_id).or_default() += 1;
    }
    assert_eq!(copies.len(), happened.len(), "every event came");
    assert!(copies.values().all(|&n| n <= 2), "{copies:?}");
    assert!(copies.values().any(|&n| n == 2), "some came twice");

    // Polling often or once at the end makes no difference to what comes when.
    let (once, clock) = on_clock(noisy(3));
    for i in 0..12 {
        pay(&once, &clock, i).await;
    }
    assert_eq!(once.webhooks_until(later()), stream);
}

#[tokio::test]
async fn duplicate_rate_one_delivers_every_event_twice_with_the_same_id() {
    let config = SimulatorConfig {
        duplicate_rate: 1.0,
        ..noisy(5)
    };
    let config = SimulatorConfig {
        reorder_rate: 0.0,
        ..config
    };
    let (sim, clock) = on_clock(config);
    let pays = [pay(&sim, &clock, 1).await, pay(&sim, &clock, 2).await];
    let expire = authorized(&sim, "a3", 10).await;
    sim.expire_authorization(&expire).expect("expired");
    let stream = sim.webhooks_until(later());
    let mut count = 0;
    for pay in pays.iter().chain([&expire]) {
        for event in sim.events(pay).expect("known") {
            count += 1;
            let positions: Vec<usize> = (0..stream.len())
                .filter(|&i| stream[i].external_id == event.external_id)
                .collect();
            assert_eq!(positions.len(), 2, "{event:?}");
            assert!(
                positions.iter().all(|&i| stream[i] == event),
                "same payload"
            );
        }
    }
    assert_eq!(stream.len(), 2 * count);
}

#[tokio::test]
async fn reorder_rate_one_delivers_some_events_after_their_successor() {
    let config = SimulatorConfig {
        reorder_rate: 1.0,
        duplicate_rate: 0.0,
        ..noisy(9)
    };
    let (sim, clock) = on_clock(config);
    for i in 0..6 {
        pay(&sim, &clock, i).await;
    }
    // An overtaken event comes soon after the one that overtook it, well before its
    // two hours' hold are up; a payment's last event has nothing to wait for.
    let mut stream = sim.webhooks_until(start() + TimeDelta::hours(1));
    let early = sequences_by_payment(&stream);
    assert_eq!(early.len(), 6);
    assert!(early.values().all(|s| s == &[2, 1]), "{early:?}");
    stream.extend(sim.webhooks_until(later()));
    let by_payment = sequences_by_payment(&stream);
    assert_eq!(by_payment.len(), 6);
    for sequences in by_payment.values() {
        // The first of every pair is held back behind the next: 2, 1, 3.
        assert_eq!(sequences, &[2, 1, 3], "{by_payment:?}");
    }
}

fn sequences_by_payment(stream: &[ProcessorEvent]) -> BTreeMap<&str, Vec<u32>> {
    let mut by_payment: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for event in stream {
        let sequences = by_payment.entry(&event.reference).or_default();
        sequences.push(event.sequence);
    }
    by_payment
}

#[tokio::test]
async fn a_held_back_webhook_without_successor_comes_after_the_hold() {
    let config = SimulatorConfig {
        reorder_rate: 1.0,
        reorder_hold: Duration::from_secs(3600),
        ..SimulatorConfig::default()
    };
    let (sim, clock) = on_clock(config);
    let pay = authorized(&sim, "a1", 100).await;
    let hour = start() + TimeDelta::hours(1);
    assert!(sim.webhooks_until(hour - TimeDelta::seconds(1)).is_empty());
    let first = sim.webhooks_until(hour);
    assert_eq!(kinds(&first), [Authorized], "delivered after the hold");
    let then = hour + TimeDelta::minutes(1);
    clock.set(then);
    sim.capture("c1", &pay, 100).await.expect("captured");
    sim.refund("r1", &pay, 100).await.expect("refunded");
    // The capture follows a held-back event and is not held back itself; the refund
    // is, and has no successor to wait for.
    assert_eq!(kinds(&sim.webhooks_until(then)), [Captured]);
    let hold = then + TimeDelta::hours(1);
    assert!(sim.webhooks_until(hold - TimeDelta::seconds(1)).is_empty());
    assert_eq!(kinds(&sim.webhooks_until(hold)), [Refunded]);
}

#[tokio::test]
async fn an_authorization_lapses_only_while_nothing_is_captured() {
    let (sim, _clock) = on_clock(SimulatorConfig::default());
    let lapsed = authorized(&sim, "a1", 800).await;
    let event = sim.expire_authorization(&lapsed).expect("expired");
    assert_eq!(
        (event.kind, event.amount_cents, event.sequence),
        (AuthorizationExpired, 800, 2)
    );
    let balance = sim.balance(&lapsed).await.expect("known");
    assert!(balance.voided);
    assert_eq!(balance.authorized_cents, 800);
    assert!(rejected_with(sim.capture("c1", &lapsed, 1).await, "voided"));
    assert!(rejected_with(
        sim.expire_authorization(&lapsed),
        "already voided"
    ));
    let captured = authorized(&sim, "a2", 800).await;
    sim.capture("c2", &captured, 100).await.expect("captured");
    assert!(rejected_with(
        sim.expire_authorization(&captured),
        "captured"
    ));
    let voided = authorized(&sim, "a3", 800).await;
    sim.void("v3", &voided).await.expect("voided");
    assert!(rejected_with(
        sim.expire_authorization(&voided),
        "already voided"
    ));
    assert!(rejected_with(
        sim.expire_authorization("pay_9"),
        "unknown payment"
    ));
    let kinds_of = |pay: &str| kinds(&sim.events(pay).expect("known"));
    assert_eq!(kinds_of(&lapsed), [Authorized, AuthorizationExpired]);
    assert_eq!(kinds_of(&captured), [Authorized, Captured]);
    assert_eq!(kinds_of(&voided), [Authorized, Voided]);
}

#[tokio::test]
async fn a_chargeback_takes_back_at_most_what_is_captured_and_not_refunded() {
    let (sim, _clock) = on_clock(SimulatorConfig::default());
    let pay = authorized(&sim, "a1", 1000).await;
    assert!(rejected_with(sim.chargeback(&pay, 1), "exceeds"));
    sim.capture("c1", &pay, 1000).await.expect("captured");
    sim.refund("r1", &pay, 300).await.expect("refunded");
    assert!(rejected_with(sim.chargeback(&pay, 701), "exceeds"));
    assert!(rejected_with(sim.chargeback(&pay, 0), "positive"));
    assert!(rejected_with(sim.chargeback("pay_9", 1), "unknown payment"));
    let event = sim.chargeback(&pay, 500).expect("charged back");
    assert_eq!((event.kind, event.amount_cents), (Chargeback, 500));
    assert_eq!(event.refund_reference, None);
    let balance = sim.balance(&pay).await.expect("known");
    assert_eq!(
        (balance.captured_cents, balance.refunded_cents),
        (1000, 800)
    );
    assert!(rejected_with(sim.refund("r2", &pay, 201).await, "exceeds"));
    sim.chargeback(&pay, 200).expect("the rest");
    assert_eq!(sim.total_refunded(), 1000);
    let all = sim.events(&pay).expect("known");
    assert_eq!(
        kinds(&all),
        [Authorized, Captured, Refunded, Chargeback, Chargeback]
    );
}

#[tokio::test]
async fn a_reversed_refund_is_the_shops_money_again() {
    let (sim, _clock) = on_clock(SimulatorConfig::default());
    let pay = authorized(&sim, "a1", 1000).await;
    sim.capture("c1", &pay, 1000).await.expect("captured");
    let first = sim.refund("r1", &pay, 400).await.expect("refunded");
    let second = sim.refund("r2", &pay, 600).await.expect("refunded");
    assert!(rejected_with(sim.reverse_refund("re_9"), "unknown refund"));
    assert!(rejected_with(sim.reverse_refund(&pay), "unknown refund"));
    let event = sim.reverse_refund(&first).expect("reversed");
    assert_eq!((event.kind, event.amount_cents), (RefundReversed, 400));
    assert_eq!(
        (event.reference.as_str(), event.sequence),
        (pay.as_str(), 5)
    );
    assert_eq!(event.refund_reference.as_deref(), Some(first.as_str()));
    let balance = sim.balance(&pay).await.expect("known");
    assert_eq!(
        (balance.captured_cents, balance.refunded_cents),
        (1000, 600)
    );
    assert!(rejected_with(
        sim.reverse_refund(&first),
        "already reversed"
    ));
    sim.refund("r3", &pay, 400).await.expect("refundable again");
    assert!(rejected_with(sim.refund("r4", &pay, 1).await, "exceeds"));
    sim.reverse_refund(&second).expect("reversed");
    assert_eq!(sim.balance(&pay).await.expect("known").refunded_cents, 400);
}

/// Runs payments `order` through a simulator of `config` in the order given, each
/// call at the same instant, the calls of different payments interleaved, and returns
/// each payment's deliveries by payment.
async fn streams(
    config: SimulatorConfig,
    order: &[usize],
) -> BTreeMap<String, Vec<ProcessorEvent>> {
    let (sim, _clock) = on_clock(config);
    let mut pays = BTreeMap::new();
    for &i in order {
        pays.insert(
            i,
            authorized(&sim, &format!("order-{i}-authorize"), 1000).await,
        );
    }
    for &i in order {
        sim.capture(&format!("order-{i}-capture"), &pays[&i], 1000)
            .await
            .expect("captured");
    }
    for &i in order.iter().rev() {
        let refund = sim
            .refund(&format!("order-{i}-refund"), &pays[&i], 100)
            .await;
        if i % 2 == 0 {
            sim.reverse_refund(&refund.expect("refunded"))
                .expect("reversed");
        } else {
            sim.chargeback(&pays[&i], 50).expect("charged back");
        }
    }
    let mut by_payment: BTreeMap<String, Vec<ProcessorEvent>> = BTreeMap::new();
    for event in sim.webhooks_until(later()) {
        by_payment
            .entry(event.reference.clone())
            .or_default()
            .push(event);
    }
    by_payment
}

#[tokio::test]
async fn the_same_seed_gives_the_same_streams_whatever_the_order_of_payments() {
    let config = SimulatorConfig {
        duplicate_rate: 0.5,
        reorder_rate: 0.5,
        ..noisy(11)
    };
    let forward = streams(config.clone(), &[0, 1, 2, 3, 4, 5]).await;
    let backward = streams(config.clone(), &[5, 3, 1, 4, 2, 0]).await;
    assert_eq!(forward, backward);
    assert_eq!(forward.len(), 6);
    let alone = streams(config.clone(), &[3]).await;
    let (pay, stream) = alone.iter().next().expect("one payment");
    assert_eq!(&forward[pay], stream);
    let another = streams(config.with_seed(12), &[0, 1, 2, 3, 4, 5]).await;
    assert_ne!(forward, another, "another seed differs");
    let delivered: usize = forward.values().map(Vec::len).sum();
    assert!(
        delivered > 6 * 4,
        "some of the 24 events came twice: {delivered}"
    );
}
