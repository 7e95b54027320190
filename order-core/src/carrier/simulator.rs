//! A carrier that lives in memory: the test double for the real carrier, which tests
//! and `orderctl simulate` cannot reach.
//!
//! It behaves like a carrier rather than a yes-machine, because the shop's interesting
//! paths are the unhappy ones: it keeps its labels, refuses what a carrier refuses
//! (voiding a label it has already picked up, an unknown label), replays the stored
//! answer of a repeated idempotency key, and injects outages and timeouts, at
//! configured rates or on demand. A timeout may come before the effect (nothing
//! happened) or after it (the label exists but the caller does not know): only a retry
//! with the same key tells which, exactly as with a real carrier.
//!
//! Each label's whole journey is drawn when it is created (see `journey.rs`) and told
//! to the shop through [`CarrierSimulator::events_until`], the webhook deliveries that
//! are due, duplicated and reordered as a carrier's are.
//!
//! Every draw is keyed: a call draws from the seed, its idempotency key and how often
//! the key was used; a tracking number derives from the seed and the key; a journey
//! from the seed and the tracking number. So a run is reproducible from its seed
//! whatever the order in which concurrent workers reach the carrier.
//!
//! The carrier's time is the latest instant the shop has polled at, or its clock's
//! when one is attached: it decides whether a parcel has been picked up yet.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::journey::{Parcel, seed_for};
use super::{Carrier, CarrierError, CarrierEvent, Label};
use crate::clock::Clock;

/// What happens to parcels, how webhooks misbehave, how often calls fail, and the seed
/// of it all. Rates are probabilities in `0.0..=1.0`, drawn independently.
#[derive(Clone, Debug, PartialEq)]
pub struct CarrierSimulatorConfig {
    pub seed: u64,
    /// The share of parcels lost in transit and reported lost after days of silence.
    pub lost_rate: f64,
    /// The share of delivery attempts that fail.
    pub failed_attempt_rate: f64,
    /// The attempts before the carrier returns a parcel to its sender; at least one
    /// is made. It should match what the shop's `attempts_exhausted` counts.
    pub max_attempts: u32,
    /// The share of failed attempts after which the carrier returns the parcel at once,
    /// the address being undeliverable or the recipient having refused it.
    pub return_rate: f64,
    /// Each parcel is scanned between 0 and this many times in transit.
    pub max_scans: u32,
    /// The share of events whose webhook is delivered a second time.
    pub duplicate_rate: f64,
    /// The share of events whose webhook is held back until after the next event's.
    pub reorder_rate: f64,
    /// The share of calls that time out before taking effect.
    pub timeout_rate: f64,
    /// The share of calls that fail with `Unavailable` before taking effect.
    pub error_rate: f64,
    /// The share of successful calls whose effect happens but whose caller sees
    /// `Timeout`: the in-doubt case that only a retry with the same key resolves.
    pub timeout_after_success_rate: f64,
    /// How long every call takes before it is answered.
    pub latency: Duration,
}

/// Mostly parcels delivered at the first attempt, but a few failed attempts, returns,
/// losses, duplicate and late webhooks: what a shop sees every day, so that nothing
/// written against the default assumes a perfect carrier. Calls do not fail: their
/// faults are the business of tests that force them.
impl Default for CarrierSimulatorConfig {
    fn default() -> CarrierSimulatorConfig {
        CarrierSimulatorConfig {
            seed: 0,
            lost_rate: 0.01,
            failed_attempt_rate: 0.08,
            max_attempts: 3,
            return_rate: 0.2,
            max_scans: 3,
            duplicate_rate: 0.05,
            reorder_rate: 0.05,
            timeout_rate: 0.0,
            error_rate: 0.0,
            timeout_after_success_rate: 0.0,
            latency: Duration::ZERO,
        }
    }
}

impl CarrierSimulatorConfig {
    /// Every parcel delivered at the first attempt, every webhook once and in order,
    /// every call answered: for tests that are not about the carrier.
    pub fn reliable() -> CarrierSimulatorConfig {
        CarrierSimulatorConfig {
            lost_rate: 0.0,
            failed_attempt_rate: 0.0,
            return_rate: 0.0,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            ..CarrierSimulatorConfig::default()
        }
    }

    pub fn with_seed(mut self, seed: u64) -> CarrierSimulatorConfig {
        self.seed = seed;
        self
    }
}

/// A kind of carrier call, for queueing forced outcomes and for the call log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CarrierCall {
    CreateLabel,
    VoidLabel,
}

impl CarrierCall {
    fn tag(self) -> &'static str {
        match self {
            CarrierCall::CreateLabel => "create_label",
            CarrierCall::VoidLabel => "void_label",
        }
    }
}

/// A request as the carrier compares it: a repeated key must carry the same request,
/// or the carrier refuses it instead of replaying an answer to a different question.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    CreateLabel {
        shipment_ref: String,
        shipped_at: DateTime<Utc>,
    },
    VoidLabel {
        tracking_number: String,
    },
}

impl Request {
    fn call(&self) -> CarrierCall {
        match self {
            Request::CreateLabel { .. } => CarrierCall::CreateLabel,
            Request::VoidLabel { .. } => CarrierCall::VoidLabel,
        }
    }
}

/// An outcome forced on the next call of a kind.
#[derive(Clone, Debug)]
enum Forced {
    Fail(CarrierError),
    SucceedThenTimeout,
}

/// The first answer given to an idempotency key, and the request it answered. A
/// success is the tracking number of the label made or voided.
#[derive(Clone, Debug)]
struct KeyEntry {
    request: Request,
    result: Result<String, CarrierError>,
}

#[derive(Debug)]
struct Inner {
    /// By tracking number, so that polls visit them in a fixed order.
    parcels: BTreeMap<String, Parcel>,
    keys: HashMap<String, KeyEntry>,
    forced: HashMap<CarrierCall, VecDeque<Forced>>,
    calls: Vec<(CarrierCall, String)>,
    /// The latest instant the shop polled at.
    polled: Option<DateTime<Utc>>,
}

/// An in-memory carrier with labels, journeys, idempotency keys and injected failures.
#[derive(Debug)]
pub struct CarrierSimulator {
    config: CarrierSimulatorConfig,
    clock: Option<Arc<dyn Clock>>,
    inner: Mutex<Inner>,
}

impl Default for CarrierSimulator {
    fn default() -> CarrierSimulator {
        CarrierSimulator::new(CarrierSimulatorConfig::default())
    }
}

impl CarrierSimulator {
    pub fn new(config: CarrierSimulatorConfig) -> CarrierSimulator {
        CarrierSimulator {
            config,
            clock: None,
            inner: Mutex::new(Inner {
                parcels: BTreeMap::new(),
                keys: HashMap::new(),
                forced: HashMap::new(),
                calls: Vec::new(),
                polled: None,
            }),
        }
    }

    /// Lets the carrier's time follow `clock` (the shop's, in a simulation), so that
    /// a parcel counts as picked up once its pickup time has passed even if nobody
    /// has polled since.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> CarrierSimulator {
        self.clock = Some(clock);
        self
    }

    pub fn config(&self) -> &CarrierSimulatorConfig {
        &self.config
    }

    /// Makes the next call of this kind fail with `error`. `Timeout` and `Unavailable`
    /// come before the effect and apply even to a repeated key; `Rejected` is the
    /// carrier's answer to a new key and is replayed for it like any answer (a
    /// repeated key keeps its first answer). Forced outcomes queue up.
    pub fn fail_next(&self, call: CarrierCall, error: CarrierError) {
        self.force(call, Forced::Fail(error));
    }

    /// Makes the next call of this kind take effect as usual while its caller sees
    /// `Timeout`; a retry with the same key then returns the stored success.
    pub fn succeed_then_timeout_next(&self, call: CarrierCall) {
        self.force(call, Forced::SucceedThenTimeout);
    }

    fn force(&self, call: CarrierCall, outcome: Forced) {
        let mut inner = self.lock();
        inner.forced.entry(call).or_default().push_back(outcome);
    }

    /// Every call received so far, with its idempotency key, in arrival order
    /// (including failed and replayed ones).
    pub fn calls(&self) -> Vec<(CarrierCall, String)> {
        self.lock().calls.clone()
    }

    /// The tracking numbers of every label created, voided ones included, sorted.
    pub fn tracking_numbers(&self) -> Vec<String> {
        self.lock().parcels.keys().cloned().collect()
    }

    /// Everything that happens to a parcel, in `sequence` order, whether delivered to
    /// the shop yet or not: the carrier's truth, for tests and reconciliation. Empty
    /// for a voided label; `None` for an unknown one.
    pub fn journey(&self, tracking_number: &str) -> Option<Vec<CarrierEvent>> {
        let inner = self.lock();
        let parcel = inner.parcels.get(tracking_number)?;
        Some(if parcel.voided {
            Vec::new()
        } else {
            parcel.events.clone()
        })
    }

    /// The webhook deliveries due at `now` that were not delivered yet, in the order
    /// they arrive: the stream the shop's inbox receives. An event may come twice (with
    /// the same `external_id`) and after a later one; none comes before it happened.
    /// Polling also moves the carrier's time on to `now`.
    pub fn events_until(&self, now: DateTime<Utc>) -> Vec<CarrierEvent> {
        let mut inner = self.lock();
        inner.polled = inner.polled.max(Some(now));
        let mut due = Vec::new();
        for parcel in inner.parcels.values_mut().filter(|p| !p.voided) {
            due.extend(parcel.take_due(now));
        }
        // A stable sort: deliveries of one parcel due at the same instant keep their
        // order, and the tracking number orders those of different parcels.
        due.sort_by(|(a_at, a), (b_at, b)| {
            (a_at, &a.tracking_number).cmp(&(b_at, &b.tracking_number))
        });
        due.into_iter().map(|(_, event)| event).collect()
    }

    /// The carrier's time: the latest of its clock and the shop's last poll.
    fn now(&self, inner: &Inner) -> Option<DateTime<Utc>> {
        let clock = self.clock.as_ref().map(|clock| clock.now());
        clock.max(inner.polled)
    }

    /// Nothing that can panic runs while the lock is held, so even a poisoned lock
    /// guards consistent labels.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one call: latency, transport faults, idempotent replay, then the effect.
    async fn handle(&self, key: &str, request: Request) -> Result<String, CarrierError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let config = &self.config;
        let call = request.call();
        let mut inner = self.lock();
        let repeat = inner
            .calls
            .iter()
            .filter(|(c, k)| *c == call && k == key)
            .count();
        let repeat = u64::try_from(repeat).unwrap_or(u64::MAX);
        let mut rng = SmallRng::seed_from_u64(seed_for(config.seed, call.tag(), key, repeat));
        inner.calls.push((call, key.to_owned()));
        let forced = inner.forced.get_mut(&call).and_then(VecDeque::pop_front);

        // Faults before the effect: the request never reached the carrier's books.
        if let Some(Forced::Fail(error @ (CarrierError::Timeout | CarrierError::Unavailable(_)))) =
            &forced
        {
            return Err(error.clone());
        }
        if rng.r#gen::<f64>() < config.timeout_rate {
            return Err(CarrierError::Timeout);
        }
        if rng.r#gen::<f64>() < config.error_rate {
            let message = "simulated carrier outage".to_owned();
            return Err(CarrierError::Unavailable(message));
        }
        let timeout_after_success = matches!(forced, Some(Forced::SucceedThenTimeout))
            || rng.r#gen::<f64>() < config.timeout_after_success_rate;

        let result = if let Some(entry) = inner.keys.get(key) {
            if entry.request != request {
                return Err(CarrierError::Rejected(format!(
                    "idempotency key `{key}` was used for a different request"
                )));
            }
            entry.result.clone()
        } else {
            let now = self.now(&inner);
            let result = match forced {
                Some(Forced::Fail(error)) => Err(error),
                _ => inner.execute(config, &request, key, now),
            };
            // Rejections are answers and stick to the key; the faults above happened
            // before the carrier looked at the request.
            let entry = KeyEntry {
                request,
                result: result.clone(),
            };
            inner.keys.insert(key.to_owned(), entry);
            result
        };
        match result {
            Ok(_) if timeout_after_success => Err(CarrierError::Timeout),
            other => other,
        }
    }
}

impl Inner {
    /// Applies a new request, or says why the carrier refuses it.
    fn execute(
        &mut self,
        config: &CarrierSimulatorConfig,
        request: &Request,
        key: &str,
        now: Option<DateTime<Utc>>,
    ) -> Result<String, CarrierError> {
        match request {
            Request::CreateLabel {
                shipment_ref,
                shipped_at,
            } => {
                if shipment_ref.trim().is_empty() {
                    let message = "a label needs a shipment reference".to_owned();
                    return Err(CarrierError::Rejected(message));
                }
                let tracking_number = self.new_tracking_number(config.seed, key);
                let parcel = Parcel::draw(config, &tracking_number, *shipped_at);
                self.parcels.insert(tracking_number.clone(), parcel);
                Ok(tracking_number)
            }
            Request::VoidLabel { tracking_number } => {
                let Some(parcel) = self.parcels.get_mut(tracking_number) else {
                    return Err(CarrierError::Rejected(format!(
                        "unknown label `{tracking_number}`"
                    )));
                };
                if parcel.voided {
                    return Err(CarrierError::Rejected(format!(
                        "label `{tracking_number}` is already voided"
                    )));
                }
                if now.is_some_and(|now| parcel.picked_up_by(now)) {
                    return Err(CarrierError::Rejected(format!(
                        "parcel `{tracking_number}` was already picked up"
                    )));
                }
                parcel.voided = true;
                Ok(tracking_number.clone())
            }
        }
    }

    /// A tracking number derived from the key, so that it does not depend on which
    /// labels came first; a collision with another key's draws the next one.
    fn new_tracking_number(&self, seed: u64, key: &str) -> String {
        let mut counter = 0;
        loop {
            let number = format!("SC{:016X}", seed_for(seed, "label", key, counter));
            if !self.parcels.contains_key(&number) {
                return number;
            }
            counter += 1;
        }
    }
}

#[async_trait]
impl Carrier for CarrierSimulator {
    async fn create_label(
        &self,
        key: &str,
        shipment_ref: &str,
        shipped_at: DateTime<Utc>,
    ) -> Result<Label, CarrierError> {
        let request = Request::CreateLabel {
            shipment_ref: shipment_ref.to_owned(),
            shipped_at,
        };
        let tracking_number = self.handle(key, request).await?;
        Ok(Label { tracking_number })
    }

    async fn void_label(&self, key: &str, tracking_number: &str) -> Result<(), CarrierError> {
        let tracking_number = tracking_number.to_owned();
        self.handle(key, Request::VoidLabel { tracking_number })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
