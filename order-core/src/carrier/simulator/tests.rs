//! The carrier simulator's tests: journeys and deliveries through the public calls,
//! idempotency, refusals and injected faults.

use super::*;
use crate::carrier::CarrierEventKind;
use crate::carrier::journey::walk;
use crate::clock::ManualClock;
use std::collections::BTreeMap;
use std::fmt::Debug;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a time")
}

fn shipped() -> DateTime<Utc> {
    at("2026-03-02T10:00:00Z")
}

const LATER: &str = "2026-06-01T00:00:00Z";

fn rejected_with(result: Result<impl Debug, CarrierError>, needle: &str) -> bool {
    matches!(result, Err(CarrierError::Rejected(m)) if m.contains(needle))
}

fn unhappy(seed: u64) -> CarrierSimulator {
    CarrierSimulator::new(CarrierSimulatorConfig {
        lost_rate: 0.2,
        failed_attempt_rate: 0.4,
        return_rate: 0.3,
        max_scans: 4,
        duplicate_rate: 0.3,
        reorder_rate: 0.3,
        seed,
        ..CarrierSimulatorConfig::default()
    })
}

async fn label(sim: &CarrierSimulator, key: &str) -> String {
    let label = sim.create_label(key, key, shipped()).await;
    label.expect("a label").tracking_number
}

/// Creates a label per key, in the order given, and returns every journey by key
/// and the whole delivery stream.
async fn run(
    sim: &CarrierSimulator,
    keys: &[String],
) -> (BTreeMap<String, Vec<CarrierEvent>>, Vec<CarrierEvent>) {
    let mut journeys = BTreeMap::new();
    for key in keys {
        let tracking = label(sim, key).await;
        journeys.insert(key.clone(), sim.journey(&tracking).expect("known"));
    }
    (journeys, sim.events_until(at(LATER)))
}

fn keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("shipment-{i}-label")).collect()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_journeys_and_deliveries() {
    let first = run(&unhappy(7), &keys(40)).await;
    assert_eq!(first, run(&unhappy(7), &keys(40)).await);
    assert_ne!(
        first,
        run(&unhappy(8), &keys(40)).await,
        "another seed differs"
    );
}

#[tokio::test]
async fn journeys_do_not_depend_on_the_order_labels_were_created_in() {
    let forward = run(&unhappy(7), &keys(40)).await;
    let mut reversed = keys(40);
    reversed.reverse();
    let backward = run(&unhappy(7), &reversed).await;
    assert_eq!(forward, backward);
    let alone = run(&unhappy(7), &keys(40)[17..18]).await;
    assert_eq!(alone.0["shipment-17-label"], forward.0["shipment-17-label"]);
}

#[tokio::test]
async fn every_delivered_stream_sorted_by_sequence_is_a_path_of_the_machine() {
    let sim = unhappy(3);
    let (journeys, stream) = run(&sim, &keys(150)).await;
    let mut endings = BTreeMap::<&str, usize>::new();
    for journey in journeys.values() {
        let tracking = &journey[0].tracking_number;
        let mut received: Vec<CarrierEvent> = stream
            .iter()
            .filter(|event| &event.tracking_number == tracking)
            .cloned()
            .collect();
        received.sort_by_key(|event| event.sequence);
        received.dedup_by(|a, b| a.external_id == b.external_id);
        assert_eq!(&received, journey, "every event arrives");
        *endings.entry(walk(&received).expect("a path")).or_default() += 1;
    }
    assert_eq!(
        endings.len(),
        3,
        "delivered, returned and lost: {endings:?}"
    );
}

#[tokio::test]
async fn duplicates_keep_their_external_id() {
    let sim = CarrierSimulator::new(CarrierSimulatorConfig {
        duplicate_rate: 1.0,
        ..CarrierSimulatorConfig::default()
    });
    let (journeys, stream) = run(&sim, &keys(10)).await;
    let events: usize = journeys.values().map(Vec::len).sum();
    assert_eq!(stream.len(), 2 * events);
    let mut by_id = BTreeMap::<&str, Vec<&CarrierEvent>>::new();
    for event in &stream {
        by_id.entry(&event.external_id).or_default().push(event);
    }
    assert_eq!(by_id.len(), events, "external ids are unique per event");
    for copies in by_id.values() {
        assert_eq!(copies.len(), 2);
        assert_eq!(copies[0], copies[1], "a duplicate is the same payload");
    }
}

#[tokio::test]
async fn reordering_delivers_events_out_of_sequence() {
    let in_order = |stream: &[CarrierEvent], tracking: &str| {
        let sequences = stream.iter().filter(|e| e.tracking_number == tracking);
        let sequences: Vec<u32> = sequences.map(|e| e.sequence).collect();
        sequences.is_sorted()
    };
    let reordered = CarrierSimulator::new(CarrierSimulatorConfig {
        reorder_rate: 1.0,
        ..CarrierSimulatorConfig::reliable()
    });
    let (journeys, stream) = run(&reordered, &keys(10)).await;
    for journey in journeys.values() {
        let tracking = &journey[0].tracking_number;
        assert!(!in_order(&stream, tracking), "{tracking} arrived in order");
    }
    let calm = CarrierSimulator::new(CarrierSimulatorConfig::reliable());
    let (journeys, stream) = run(&calm, &keys(10)).await;
    for journey in journeys.values() {
        assert!(in_order(&stream, &journey[0].tracking_number));
    }
}

#[tokio::test]
async fn polls_deliver_what_is_due_once_and_never_early() {
    let sim = unhappy(5);
    let (_, everything) = run(&unhappy(5), &keys(20)).await;
    for key in keys(20) {
        label(&sim, &key).await;
    }
    assert!(
        sim.events_until(shipped()).is_empty(),
        "nothing happened yet"
    );
    let mut now = shipped();
    let mut polled = Vec::new();
    while now < at(LATER) {
        now += chrono::TimeDelta::hours(7);
        for event in sim.events_until(now) {
            assert!(event.occurred_at <= now);
            polled.push(event);
        }
    }
    polled.extend(sim.events_until(at(LATER)));
    let mut everything_sorted = everything.clone();
    everything_sorted.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    polled.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    assert_eq!(polled, everything_sorted, "the same deliveries, each once");
}

#[tokio::test]
async fn void_is_refused_once_the_parcel_is_picked_up() {
    let sim = CarrierSimulator::new(CarrierSimulatorConfig::reliable());
    let early = label(&sim, "l1").await;
    sim.void_label("v1", &early).await.expect("voided");
    sim.void_label("v1", &early).await.expect("replayed");
    assert!(rejected_with(
        sim.void_label("v2", &early).await,
        "already voided"
    ));
    assert_eq!(
        sim.journey(&early),
        Some(Vec::new()),
        "nothing happens to it"
    );
    assert!(rejected_with(
        sim.void_label("v3", "SC0").await,
        "unknown label"
    ));

    let late = label(&sim, "l2").await;
    let pickup = sim.journey(&late).expect("known")[0].clone();
    assert_eq!(pickup.kind, CarrierEventKind::PickUp);
    sim.events_until(pickup.occurred_at);
    assert!(rejected_with(
        sim.void_label("v4", &late).await,
        "picked up"
    ));
    let stream = sim.events_until(at(LATER));
    assert!(stream.iter().all(|event| event.tracking_number == late));
    assert!(stream.iter().any(|e| e.kind == CarrierEventKind::Deliver));

    let clock = Arc::new(ManualClock::new(shipped()));
    let sim = CarrierSimulator::new(CarrierSimulatorConfig::reliable()).with_clock(clock.clone());
    let parcel = label(&sim, "l3").await;
    clock.set(sim.journey(&parcel).expect("known")[0].occurred_at);
    assert!(rejected_with(
        sim.void_label("v5", &parcel).await,
        "picked up"
    ));
}

#[tokio::test]
async fn repeated_keys_replay_the_first_label() {
    let sim = CarrierSimulator::default();
    let first = sim.create_label("l1", "shipment-1", shipped()).await;
    let first = first.expect("a label");
    assert_eq!(
        sim.create_label("l1", "shipment-1", shipped()).await,
        Ok(first.clone())
    );
    assert!(rejected_with(
        sim.create_label("l1", "shipment-2", shipped()).await,
        "different request"
    ));
    assert!(rejected_with(
        sim.void_label("l1", &first.tracking_number).await,
        "different request"
    ));
    let second = label(&sim, "l2").await;
    assert_ne!(second, first.tracking_number);
    assert_eq!(sim.tracking_numbers().len(), 2, "one label per key");
    assert!(rejected_with(
        sim.create_label("l3", " ", shipped()).await,
        "shipment reference"
    ));
}

#[tokio::test]
async fn a_timeout_after_success_is_resolved_by_a_retry() {
    let sim = CarrierSimulator::new(CarrierSimulatorConfig::reliable());
    sim.succeed_then_timeout_next(CarrierCall::CreateLabel);
    let in_doubt = sim.create_label("l1", "l1", shipped()).await;
    assert_eq!(in_doubt, Err(CarrierError::Timeout));
    let created = sim.tracking_numbers();
    assert_eq!(created.len(), 1, "the label was made");
    let retried = label(&sim, "l1").await;
    assert_eq!(vec![retried.clone()], created, "the retry returns it");
    assert_eq!(sim.tracking_numbers().len(), 1, "and made it once");

    sim.succeed_then_timeout_next(CarrierCall::VoidLabel);
    assert_eq!(
        sim.void_label("v1", &retried).await,
        Err(CarrierError::Timeout)
    );
    assert_eq!(sim.journey(&retried), Some(Vec::new()), "the void happened");
    sim.void_label("v1", &retried)
        .await
        .expect("the retry sees the success");

    let always = CarrierSimulator::new(CarrierSimulatorConfig {
        timeout_after_success_rate: 1.0,
        ..CarrierSimulatorConfig::reliable()
    });
    for i in 0..5 {
        let result = always.create_label(&format!("l{i}"), "s", shipped()).await;
        assert_eq!(result, Err(CarrierError::Timeout));
    }
    assert_eq!(always.tracking_numbers().len(), 5);
}

#[tokio::test]
async fn fail_next_forces_the_next_call_of_its_kind_only() {
    let sim = CarrierSimulator::new(CarrierSimulatorConfig::reliable());
    let outage = CarrierError::Unavailable("down".to_owned());
    sim.fail_next(CarrierCall::CreateLabel, outage.clone());
    sim.fail_next(CarrierCall::VoidLabel, CarrierError::Timeout);
    assert_eq!(sim.create_label("l1", "s1", shipped()).await, Err(outage));
    assert!(sim.tracking_numbers().is_empty(), "an outage made nothing");
    let tracking = label(&sim, "l1").await;
    let other = label(&sim, "l2").await;
    let timed_out = sim.void_label("v1", &tracking).await;
    assert_eq!(timed_out, Err(CarrierError::Timeout));
    assert!(
        !sim.journey(&tracking).expect("known").is_empty(),
        "not voided"
    );
    sim.void_label("v1", &tracking)
        .await
        .expect("the retry voids");
    sim.void_label("v2", &other)
        .await
        .expect("only the next void failed");

    let refusal = CarrierError::Rejected("no service to that area".to_owned());
    sim.fail_next(CarrierCall::CreateLabel, refusal.clone());
    assert_eq!(
        sim.create_label("l3", "s3", shipped()).await,
        Err(refusal.clone())
    );
    let replay = sim.create_label("l3", "s3", shipped()).await;
    assert_eq!(replay, Err(refusal), "a refusal is replayed");
    let kinds: Vec<CarrierCall> = sim.calls().into_iter().map(|(call, _)| call).collect();
    let (create, void) = (CarrierCall::CreateLabel, CarrierCall::VoidLabel);
    assert_eq!(
        kinds,
        [create, create, create, void, void, void, create, create]
    );
}

#[tokio::test]
async fn fault_rates_fail_calls_before_the_effect() {
    let timeouts = CarrierSimulator::new(CarrierSimulatorConfig {
        timeout_rate: 1.0,
        ..CarrierSimulatorConfig::reliable()
    });
    let outages = CarrierSimulator::new(CarrierSimulatorConfig {
        error_rate: 1.0,
        ..CarrierSimulatorConfig::reliable()
    });
    for i in 0..5 {
        let key = format!("l{i}");
        let timed_out = timeouts.create_label(&key, "s", shipped()).await;
        assert_eq!(timed_out, Err(CarrierError::Timeout));
        let failed = outages.create_label(&key, "s", shipped()).await;
        assert!(matches!(failed, Err(CarrierError::Unavailable(_))));
    }
    assert!(timeouts.tracking_numbers().is_empty());
    assert!(outages.tracking_numbers().is_empty());
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let latency = Duration::from_millis(20);
    let sim = CarrierSimulator::new(CarrierSimulatorConfig {
        latency,
        ..CarrierSimulatorConfig::default()
    });
    let start = std::time::Instant::now();
    label(&sim, "l1").await;
    assert!(start.elapsed() >= latency);
}
