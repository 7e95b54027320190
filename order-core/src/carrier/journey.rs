//! One parcel's journey as the carrier lives it, drawn whole when its label is created,
//! and the webhook deliveries that tell the shop about it.
//!
//! A journey follows `shipment.fsm`: pick up, some scans, out for delivery, then
//! delivered, or failed attempts and new tries until the carrier gives up and returns
//! the parcel; or, while in transit, the parcel goes silent and is reported lost. Each
//! parcel draws from a generator of its own, seeded from the simulator's seed and the
//! tracking number alone, so its fate does not depend on which labels came before it
//! nor on when the shop polls.
//!
//! Deliveries are the webhooks: each event is delivered a little after it happened,
//! sometimes twice (a retry of a delivery the receiver did acknowledge), and sometimes
//! held back until after the next event's (a retry of one it did not).

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use statemachine::Machine as _;

use super::shipment;
use super::{CarrierEvent, CarrierEventKind, CarrierSimulatorConfig};

/// The reasons a carrier gives when it returns a parcel without trying again: the
/// address does not exist, or the recipient refused the parcel at the door.
const GIVE_UP_REASONS: [&str; 2] = ["address_undeliverable", "refused_by_recipient"];
/// The reason of a failed attempt that the carrier will try again: nobody was home,
/// which `shipment.fsm` has no reason code of its own for.
const ABSENT_REASON: &str = "other";
const LOST_REASON: &str = "lost_in_transit";

/// A parcel at the carrier: its whole journey and the deliveries of its events.
#[derive(Clone, Debug)]
pub(super) struct Parcel {
    /// In `sequence` order, which is also the order in which they happen.
    pub(super) events: Vec<CarrierEvent>,
    /// In order of delivery time; a stable order, so that a duplicate due at the same
    /// instant as its original comes after it.
    deliveries: Vec<Delivery>,
    /// How many of `deliveries` have been handed to the shop, always a prefix.
    delivered: usize,
    /// A voided label is never picked up: nothing happens to it and nothing is sent.
    pub(super) voided: bool,
}

/// One webhook delivery of the event at index `event`.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    event: usize,
    due_at: DateTime<Utc>,
}

impl Parcel {
    /// Draws the journey of the parcel `tracking_number`, handed over at `shipped_at`.
    pub(super) fn draw(
        config: &CarrierSimulatorConfig,
        tracking_number: &str,
        shipped_at: DateTime<Utc>,
    ) -> Parcel {
        let seed = seed_for(config.seed, "journey", tracking_number, 0);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut journey = Journey {
            tracking_number,
            events: Vec::new(),
            at: pickup_time(&mut rng, shipped_at),
        };
        journey.push(CarrierEventKind::PickUp, None);
        let scans = rng.gen_range(0..=config.max_scans);
        let lost_after = (rng.r#gen::<f64>() < config.lost_rate).then(|| rng.gen_range(0..=scans));
        for _ in 0..lost_after.unwrap_or(scans) {
            journey.wait(&mut rng, 2 * 60, 12 * 60);
            journey.push(CarrierEventKind::Scan, None);
        }
        if lost_after.is_some() {
            // A parcel is reported lost only after its tracking has been silent for
            // days: the window `tracking_silent_for_window` waits for.
            journey.wait(&mut rng, 3 * 24 * 60, 7 * 24 * 60);
            journey.push(CarrierEventKind::ReportLost, Some(LOST_REASON));
        } else {
            journey.attempt_delivery(config, &mut rng);
        }
        let deliveries = deliveries(config, &mut rng, &journey.events);
        Parcel {
            events: journey.events,
            deliveries,
            delivered: 0,
            voided: false,
        }
    }

    /// Whether the carrier has the parcel at `now`.
    pub(super) fn picked_up_by(&self, now: DateTime<Utc>) -> bool {
        self.events
            .first()
            .is_some_and(|event| event.occurred_at <= now)
    }

    /// The deliveries due at `now` that were not handed out yet, in delivery order,
    /// with their due times; from now on they count as delivered.
    pub(super) fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, CarrierEvent)> {
        let pending = &self.deliveries[self.delivered..];
        let due = pending.iter().take_while(|d| d.due_at <= now).count();
        let taken = &pending[..due];
        self.delivered += due;
        let events = &self.events;
        taken
            .iter()
            .map(|d| (d.due_at, events[d.event].clone()))
            .collect()
    }
}

/// A journey being drawn: the events so far and the carrier's time.
struct Journey<'a> {
    tracking_number: &'a str,
    events: Vec<CarrierEvent>,
    at: DateTime<Utc>,
}

impl Journey<'_> {
    fn push(&mut self, kind: CarrierEventKind, reason: Option<&str>) {
        let sequence = u32::try_from(self.events.len() + 1).unwrap_or(u32::MAX);
        let tracking_number = self.tracking_number.to_owned();
        self.events.push(CarrierEvent {
            external_id: format!("evt_{tracking_number}_{sequence}"),
            tracking_number,
            kind,
            reason: reason.map(str::to_owned),
            occurred_at: self.at,
            sequence,
        });
    }

    /// Lets between `min` and `max` minutes pass.
    fn wait(&mut self, rng: &mut SmallRng, min: i64, max: i64) {
        self.at += minutes(rng, min, max);
    }

    /// Out for delivery until the parcel is delivered or the carrier gives up on it:
    /// at once when the address is wrong or the recipient refuses, else after its
    /// last attempt.
    fn attempt_delivery(&mut self, config: &CarrierSimulatorConfig, rng: &mut SmallRng) {
        // A carrier that made no attempt could not have failed one, so there is one.
        let attempts = config.max_attempts.max(1);
        for attempt in 1..=attempts {
            if attempt == 1 {
                self.wait(rng, 4 * 60, 20 * 60);
            } else {
                // The next try is on the next working round, about a day later.
                self.wait(rng, 16 * 60, 28 * 60);
            }
            self.push(CarrierEventKind::Dispatch, None);
            self.wait(rng, 60, 9 * 60);
            if rng.r#gen::<f64>() >= config.failed_attempt_rate {
                self.push(CarrierEventKind::Deliver, None);
                return;
            }
            let give_up = rng.r#gen::<f64>() < config.return_rate;
            let reason = if give_up {
                GIVE_UP_REASONS[rng.gen_range(0..GIVE_UP_REASONS.len())]
            } else {
                ABSENT_REASON
            };
            self.push(CarrierEventKind::AttemptFailed, Some(reason));
            if give_up || attempt == attempts {
                self.wait(rng, 2 * 60, 24 * 60);
                self.push(CarrierEventKind::ReturnToSender, Some(reason));
                return;
            }
        }
    }
}

/// When the carrier comes for a parcel handed over at `shipped_at`: once it is ready
/// (an hour to a day later), within the calendar of the machine's `pick_up`, so that
/// the shop's machine accepts the pickup when the carrier reports it.
fn pickup_time(rng: &mut SmallRng, shipped_at: DateTime<Utc>) -> DateTime<Utc> {
    let ready = shipped_at + minutes(rng, 60, 24 * 60);
    let window = shipment::Machine::candidates(shipment::Machine::INITIAL, shipment::Event::PickUp)
        .iter()
        .find_map(|spec| spec.calendar());
    let Some(window) = window else {
        return ready;
    };
    match window.next_open(ready) {
        // Carriers do not all arrive at the opening minute.
        Some(open) if open > ready => {
            let later = open + minutes(rng, 0, 3 * 60);
            if window.is_open(later) { later } else { open }
        }
        _ => ready,
    }
}

/// The webhook deliveries of a journey's events, in delivery order.
fn deliveries(
    config: &CarrierSimulatorConfig,
    rng: &mut SmallRng,
    events: &[CarrierEvent],
) -> Vec<Delivery> {
    let mut due: Vec<DateTime<Utc>> = events
        .iter()
        .map(|event| event.occurred_at + seconds(rng, 5, 5 * 60))
        .collect();
    // A delivery the receiver did not acknowledge is retried later, after the next
    // event's went through: the inversion a receiver must put right by `sequence`.
    // Pairs do not overlap, so each event overtakes at most one other.
    let mut index = 0;
    while index + 1 < due.len() {
        if rng.r#gen::<f64>() < config.reorder_rate {
            due[index] = due[index + 1] + seconds(rng, 1, 30 * 60);
            index += 2;
        } else {
            index += 1;
        }
    }
    let mut deliveries = Vec::with_capacity(due.len());
    for (event, &due_at) in due.iter().enumerate() {
        deliveries.push(Delivery { event, due_at });
        if rng.r#gen::<f64>() < config.duplicate_rate {
            let due_at = due_at + seconds(rng, 0, 6 * 60 * 60);
            deliveries.push(Delivery { event, due_at });
        }
    }
    deliveries.sort_by_key(|delivery| delivery.due_at);
    deliveries
}

fn minutes(rng: &mut SmallRng, min: i64, max: i64) -> TimeDelta {
    TimeDelta::minutes(rng.gen_range(min..=max))
}

fn seconds(rng: &mut SmallRng, min: i64, max: i64) -> TimeDelta {
    TimeDelta::seconds(rng.gen_range(min..=max))
}

/// A seed for one draw: FNV-1a over the seed, a tag naming the draw, a text (a key or
/// a tracking number) and a counter, so that it is the same on every platform and run.
/// The `0xff` separators never occur in UTF-8, so no two inputs run together.
pub(super) fn seed_for(seed: u64, tag: &str, text: &str, counter: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed.to_le_bytes().into_iter().chain(tag.bytes());
    let bytes = bytes.chain([0xff]).chain(text.bytes()).chain([0xff]);
    for byte in bytes.chain(counter.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Walks `events`, sorted by `sequence`, through a hand-written table of the carrier's
/// transitions of `shipment.fsm`, and checks each step against the compiled machine
/// too; returns the state the parcel ends in.
#[cfg(test)]
pub(super) fn walk(events: &[CarrierEvent]) -> Result<&'static str, String> {
    use CarrierEventKind::*;
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|event| event.sequence);
    let mut state = "label_created";
    for event in &sorted {
        let next = match (state, event.kind) {
            ("label_created", PickUp) => "in_transit",
            ("in_transit", Scan) => "in_transit",
            ("in_transit" | "failed_attempt", Dispatch) => "out_for_delivery",
            ("out_for_delivery", Deliver) => "delivered",
            ("out_for_delivery", AttemptFailed) => "failed_attempt",
            ("in_transit" | "failed_attempt", ReturnToSender) => "returned_to_sender",
            ("in_transit" | "out_for_delivery" | "failed_attempt", ReportLost) => "lost",
            (state, kind) => return Err(format!("no `{kind}` from `{state}`: {sorted:?}")),
        };
        let from: shipment::State = state.parse().map_err(|e| format!("{e:?}"))?;
        let machine_event: shipment::Event =
            event.kind.as_str().parse().map_err(|e| format!("{e:?}"))?;
        let allowed = shipment::Machine::candidates(from, machine_event)
            .iter()
            .filter(|spec| spec.to.as_str() == next)
            .filter_map(|spec| spec.rule_for(shipment::ActorKind::Carrier))
            .any(|rule| rule.needs_reason == event.reason.is_some());
        if !allowed {
            return Err(format!("the machine disagrees on {event:?} from `{state}`"));
        }
        state = next;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    fn unhappy() -> CarrierSimulatorConfig {
        CarrierSimulatorConfig {
            lost_rate: 0.2,
            failed_attempt_rate: 0.5,
            return_rate: 0.3,
            max_scans: 4,
            duplicate_rate: 0.3,
            reorder_rate: 0.3,
            ..CarrierSimulatorConfig::default()
        }
    }

    fn parcels(config: &CarrierSimulatorConfig, count: usize) -> Vec<Parcel> {
        let shipped_at = at("2026-03-06T15:30:00Z");
        (0..count)
            .map(|i| Parcel::draw(config, &format!("SC{i:04}"), shipped_at))
            .collect()
    }

    #[test]
    fn every_journey_is_a_path_of_the_shipment_machine_in_time_order() {
        let mut endings: BTreeMap<&str, usize> = BTreeMap::new();
        let mut kinds = std::collections::BTreeSet::new();
        for parcel in parcels(&unhappy(), 400) {
            let ending = walk(&parcel.events).expect("a valid path");
            let terminal = ["delivered", "returned_to_sender", "lost"];
            assert!(terminal.contains(&ending), "ends in {ending}");
            *endings.entry(ending).or_default() += 1;
            for (index, pair) in parcel.events.windows(2).enumerate() {
                assert!(pair[0].occurred_at < pair[1].occurred_at, "{pair:?}");
                assert_eq!(pair[0].sequence as usize, index + 1);
            }
            let dispatches = parcel
                .events
                .iter()
                .filter(|e| e.kind == CarrierEventKind::Dispatch);
            assert!(dispatches.count() <= 3, "at most max_attempts tries");
            kinds.extend(parcel.events.iter().map(|event| event.kind));
        }
        assert_eq!(endings.len(), 3, "every ending occurs: {endings:?}");
        assert_eq!(
            kinds.len(),
            CarrierEventKind::ALL.len(),
            "every kind occurs"
        );
    }

    #[test]
    fn the_default_journeys_are_mostly_but_not_all_happy() {
        let drawn = parcels(&CarrierSimulatorConfig::default(), 500);
        let delivered = drawn
            .iter()
            .filter(|p| walk(&p.events) == Ok("delivered"))
            .count();
        let failed = drawn.iter().filter(|p| {
            p.events
                .iter()
                .any(|e| e.kind == CarrierEventKind::AttemptFailed)
        });
        assert!(
            (400..500).contains(&delivered),
            "{delivered} of 500 delivered"
        );
        assert!(failed.count() > 0, "some deliveries fail at first");
    }

    #[test]
    fn pickups_fall_in_the_carrier_pickup_calendar() {
        let window = shipment::Machine::calendar("carrier_pickup").expect("declared");
        let config = CarrierSimulatorConfig::default();
        // A Friday evening before a weekend, and the evening before Christmas closing.
        for shipped in ["2026-03-06T17:30:00Z", "2026-12-23T16:00:00Z"] {
            let shipped_at = at(shipped);
            for i in 0..100 {
                let parcel = Parcel::draw(&config, &format!("SC{i}"), shipped_at);
                let pickup = parcel.events[0].occurred_at;
                assert!(window.is_open(pickup), "picked up at {pickup}");
                assert!(pickup >= shipped_at + TimeDelta::hours(1), "{pickup}");
            }
        }
    }

    #[test]
    fn deliveries_come_after_the_events_and_follow_the_rates() {
        let calm = CarrierSimulatorConfig {
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            ..unhappy()
        };
        for mut parcel in parcels(&calm, 100) {
            let delivered = parcel.take_due(at("2030-01-01T00:00:00Z"));
            let sequences: Vec<u32> = delivered.iter().map(|(_, e)| e.sequence).collect();
            let expected: Vec<u32> = parcel.events.iter().map(|e| e.sequence).collect();
            assert_eq!(sequences, expected, "each once and in order");
            for (due_at, event) in &delivered {
                assert!(*due_at > event.occurred_at);
            }
        }
        let twice = CarrierSimulatorConfig {
            duplicate_rate: 1.0,
            ..calm
        };
        for mut parcel in parcels(&twice, 20) {
            let delivered = parcel.take_due(at("2030-01-01T00:00:00Z"));
            assert_eq!(delivered.len(), 2 * parcel.events.len());
            for event in &parcel.events {
                let copies = delivered.iter().filter(|(_, e)| e == event).count();
                assert_eq!(copies, 2, "{event:?}");
            }
        }
    }

    #[test]
    fn take_due_hands_out_each_delivery_once_when_due() {
        let mut parcel = Parcel::draw(&unhappy(), "SC1", at("2026-03-06T15:30:00Z"));
        assert!(parcel.take_due(at("2026-03-06T15:30:00Z")).is_empty());
        let first = parcel.events[0].occurred_at;
        assert!(parcel.picked_up_by(first) && !parcel.picked_up_by(first - TimeDelta::seconds(1)));
        let mut seen = Vec::new();
        let mut now = first;
        while seen.len() < parcel.deliveries.len() {
            for (due_at, event) in parcel.take_due(now) {
                assert!(due_at <= now);
                seen.push(event);
            }
            now += TimeDelta::hours(1);
        }
        assert!(parcel.take_due(at("2030-01-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn seeds_hash_every_part() {
        let base = seed_for(1, "label", "k", 0);
        assert_eq!(base, seed_for(1, "label", "k", 0));
        for other in [
            seed_for(2, "label", "k", 0),
            seed_for(1, "journey", "k", 0),
            seed_for(1, "label", "k2", 0),
            seed_for(1, "label", "k", 1),
            seed_for(1, "labelk", "", 0),
        ] {
            assert_ne!(base, other);
        }
    }
}
