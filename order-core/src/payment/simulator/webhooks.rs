//! The webhooks of one payment: every event the processor records for it, and the
//! deliveries that tell the shop about them.
//!
//! Each event draws its deliveries from a generator of its own, seeded from the
//! simulator's seed and the event's `external_id` alone, so a payment's stream does not
//! depend on which payments came before it nor on when the shop polls.
//!
//! An event is delivered a little after it happened (`webhook_delay`), sometimes a
//! second time later on (a retry of a delivery the receiver did acknowledge), and
//! sometimes held back until after the payment's next event's delivery (a retry of one
//! it did not): the inversion a receiver must put right by `sequence`. A held-back
//! delivery waits at most `reorder_hold` for that next event; a payment's last event
//! is not held back for ever.

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::SimulatorConfig;
use crate::payment::{ProcessorEvent, ProcessorEventKind};

/// The latest a duplicate delivery comes after the first one, in seconds.
const DUPLICATE_WITHIN_SECS: i64 = 6 * 60 * 60;
/// The latest a held-back delivery comes after the delivery that overtook it, in
/// seconds.
const OVERTAKEN_BY_SECS: i64 = 30 * 60;

/// What happened to a payment, as one of its events tells it.
#[derive(Clone, Debug)]
pub(super) struct Happening {
    pub(super) kind: ProcessorEventKind,
    pub(super) amount_cents: i64,
    pub(super) refund_reference: Option<String>,
}

/// A payment's events and the deliveries not handed to the shop yet.
#[derive(Clone, Debug, Default)]
pub(super) struct Webhooks {
    /// In `sequence` order.
    records: Vec<Record>,
    /// Deliveries not handed out yet, in no particular order.
    pending: Vec<Delivery>,
}

/// One event and when its first delivery is due.
#[derive(Clone, Debug)]
struct Record {
    event: ProcessorEvent,
    due_at: DateTime<Utc>,
    /// For a held-back event: how long after the next event's delivery it comes.
    overtaken_by: Option<TimeDelta>,
}

/// One webhook delivery of the event at index `event`, `after` its first delivery
/// (zero for the first delivery itself).
#[derive(Clone, Copy, Debug)]
struct Delivery {
    event: usize,
    after: TimeDelta,
}

impl Webhooks {
    /// Every event so far, in `sequence` order, delivered or not.
    pub(super) fn events(&self) -> impl Iterator<Item = &ProcessorEvent> {
        self.records.iter().map(|record| &record.event)
    }

    /// Records the payment's next event, draws its deliveries, and returns it.
    pub(super) fn record(
        &mut self,
        config: &SimulatorConfig,
        reference: &str,
        happening: Happening,
        occurred_at: DateTime<Utc>,
    ) -> ProcessorEvent {
        let sequence = u32::try_from(self.records.len() + 1).unwrap_or(u32::MAX);
        let external_id = format!("evt_{reference}_{sequence}");
        let mut rng = SmallRng::seed_from_u64(webhook_seed(config.seed, &external_id));
        // Every draw is made whatever the rates, so that changing one rate does not
        // change what the others decide.
        let delay = between(&mut rng, config.webhook_delay.0, config.webhook_delay.1);
        let reorder = rng.r#gen::<f64>() < config.reorder_rate;
        let duplicate = rng.r#gen::<f64>() < config.duplicate_rate;
        let duplicate_after = TimeDelta::seconds(rng.gen_range(1..=DUPLICATE_WITHIN_SECS));
        let overtaken_by = TimeDelta::seconds(rng.gen_range(1..=OVERTAKEN_BY_SECS));

        let event = ProcessorEvent {
            external_id,
            reference: reference.to_owned(),
            kind: happening.kind,
            amount_cents: happening.amount_cents,
            refund_reference: happening.refund_reference,
            occurred_at,
            sequence,
        };
        let due_at = plus(occurred_at, delay);
        let index = self.records.len();
        // Pairs do not overlap: an event overtakes at most one other, and one that
        // overtakes is not held back itself.
        let previous = self.records.last().filter(|r| r.overtaken_by.is_some());
        let held = reorder && previous.is_none();
        if let Some(previous) = previous
            && self
                .pending
                .iter()
                .any(|d| d.event + 1 == index && d.after.is_zero())
        {
            let overtaken = plus(due_at, previous.overtaken_by.unwrap_or_default());
            let earliest = previous.event.occurred_at;
            let record = &mut self.records[index - 1];
            record.due_at = record.due_at.min(overtaken).max(earliest);
        }
        let (due_at, overtaken_by) = if held {
            (plus(due_at, hold(config)), Some(overtaken_by))
        } else {
            (due_at, None)
        };
        self.records.push(Record {
            event: event.clone(),
            due_at,
            overtaken_by,
        });
        self.pending.push(Delivery {
            event: index,
            after: TimeDelta::zero(),
        });
        if duplicate {
            self.pending.push(Delivery {
                event: index,
                after: duplicate_after,
            });
        }
        event
    }

    /// The deliveries due at `now` that were not handed out yet; from now on they
    /// count as delivered.
    pub(super) fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let records = &self.records;
        let mut due = Vec::new();
        self.pending.retain(|delivery| {
            let at = plus(records[delivery.event].due_at, delivery.after);
            if at > now {
                return true;
            }
            due.push(Due {
                at,
                copy: u8::from(!delivery.after.is_zero()),
                event: records[delivery.event].event.clone(),
            });
            false
        });
        due
    }
}

/// A delivery handed out: when it was due, whether it is the first (0) or the second
/// (1) of its event, and the event.
#[derive(Clone, Debug)]
pub(super) struct Due {
    pub(super) at: DateTime<Utc>,
    pub(super) copy: u8,
    pub(super) event: ProcessorEvent,
}

impl Due {
    /// What orders deliveries: their due time, then (for those due at the same
    /// instant) the payment, the event and the copy.
    pub(super) fn arrival(&self) -> (DateTime<Utc>, &str, u32, u8) {
        let event = &self.event;
        (self.at, &event.reference, event.sequence, self.copy)
    }
}

/// How long a held-back delivery waits for the next event, at most.
fn hold(config: &SimulatorConfig) -> TimeDelta {
    TimeDelta::from_std(config.reorder_hold).unwrap_or(TimeDelta::MAX)
}

/// A time between `low` and `high` (in either order), to the millisecond.
fn between(rng: &mut SmallRng, low: std::time::Duration, high: std::time::Duration) -> TimeDelta {
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (low, high) = (millis(low), millis(high));
    let drawn = rng.gen_range(low.min(high)..=low.max(high));
    let drawn = i64::try_from(drawn).unwrap_or(i64::MAX);
    TimeDelta::try_milliseconds(drawn).unwrap_or(TimeDelta::MAX)
}

/// `at + delta`, at most the latest time there is: nothing here may panic while the
/// simulator's lock is held.
fn plus(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A seed for one event's deliveries: FNV-1a over the seed, a tag and the event's id,
/// the same on every platform and run. The `0xff` separator never occurs in UTF-8.
fn webhook_seed(seed: u64, external_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed.to_le_bytes().into_iter().chain(*b"webhook");
    for byte in bytes.chain([0xff]).chain(external_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
