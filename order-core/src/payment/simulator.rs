//! A payment processor that lives in memory: the test double for the real processor,
//! which tests and `orderctl simulate` cannot reach.
//!
//! It behaves like a processor rather than a yes-machine, because the engine's
//! interesting paths are the unhappy ones: it keeps books per payment and refuses what a
//! processor refuses (capturing more than was authorized, voiding captured money,
//! refunding more than was captured), it replays the stored answer of a repeated
//! idempotency key, and it injects declines, outages and timeouts, at configured rates
//! or on demand. A timeout may come before the effect (nothing happened) or after it
//! (the money moved but the caller does not know): only a retry with the same key tells
//! which, exactly as with a real processor.
//!
//! Every effect is also an event, told to the shop by webhook: the confirmations of the
//! shop's own requests, and the processor's own doings, which tests and simulations
//! cause on demand ([`Simulator::expire_authorization`], [`Simulator::chargeback`],
//! [`Simulator::reverse_refund`]). [`Simulator::webhooks_until`] hands out the
//! deliveries that are due, late, duplicated and reordered as a processor's are (see
//! `webhooks.rs`). An event happens at the time of the simulator's clock.
//!
//! Every random draw comes from one seeded generator, so a run is reproducible from its
//! seed and the order of its calls. With `keyed` draws the generator is reseeded per
//! call from the seed, the idempotency key and how often the key was used, and
//! references derive from keys, so a run is reproducible whatever the order of calls
//! from concurrent workers. Webhook deliveries always draw per event, from the seed and
//! the event's id, so they depend only on what happened to their payment.

mod happenings;
mod webhooks;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use self::webhooks::{Happening, Webhooks};
use super::{Authorization, Balance, PaymentError, PaymentProcessor};
use super::{ProcessorEvent, ProcessorEventKind};
use crate::clock::{Clock, SystemClock};

/// The decline codes an authorization may fail with, as a card network reports them.
const DECLINE_CODES: [&str; 3] = ["insufficient_funds", "card_declined", "expired_card"];

/// How often the simulator fails, how slow it and its webhooks are, and the seed of its
/// randomness. Rates are probabilities in `0.0..=1.0`, drawn independently per call
/// (per event for webhooks).
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    /// The share of fresh authorizations declined with a decline code.
    pub decline_rate: f64,
    /// The share of calls that time out before taking effect.
    pub timeout_rate: f64,
    /// The share of calls that fail with `Unavailable` before taking effect.
    pub error_rate: f64,
    /// The share of successful calls whose effect happens but whose caller sees
    /// `Timeout`: the in-doubt case that only a retry with the same key resolves.
    pub timeout_after_success_rate: f64,
    /// The share of successful authorizations flagged for a manual fraud review.
    pub review_rate: f64,
    /// How long every call takes before it is answered.
    pub latency: Duration,
    pub seed: u64,
    /// Draw per call from (seed, key, repeat) instead of from one sequence: outcomes
    /// no longer depend on the order concurrent callers reach the processor.
    pub keyed: bool,
    /// How long after an event its webhook is delivered: a time drawn between the two
    /// bounds (in either order) per event.
    pub webhook_delay: (Duration, Duration),
    /// The share of events whose webhook is delivered a second time, later.
    pub duplicate_rate: f64,
    /// The share of events whose webhook is held back until after the delivery of the
    /// payment's next event.
    pub reorder_rate: f64,
    /// How long a held-back webhook waits for the payment's next event at most: one
    /// whose next event does not come in time is delivered, in order, after this.
    pub reorder_hold: Duration,
}

/// A processor that never fails and answers at once, and whose webhooks come once each,
/// in order, as the events happen: so tests that are not about failures need no
/// configuration.
impl Default for SimulatorConfig {
    fn default() -> SimulatorConfig {
        SimulatorConfig {
            decline_rate: 0.0,
            timeout_rate: 0.0,
            error_rate: 0.0,
            timeout_after_success_rate: 0.0,
            review_rate: 0.0,
            latency: Duration::ZERO,
            seed: 0,
            keyed: false,
            webhook_delay: (Duration::ZERO, Duration::ZERO),
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            reorder_hold: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A kind of processor call, for queueing forced outcomes and for the call log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Authorize,
    Capture,
    Void,
    Refund,
}

/// One payment in the books. Captured money can only be refunded, not voided.
/// `refunded` counts refunds and chargebacks, less the refunds reversed.
#[derive(Clone, Debug)]
struct Book {
    authorized: i64,
    captured: i64,
    refunded: i64,
    voided: bool,
    webhooks: Webhooks,
}

/// A refund paid, by its reference: the payment it came from and its amount.
#[derive(Clone, Debug)]
struct RefundEntry {
    payment: String,
    amount_cents: i64,
    reversed: bool,
}

/// A request as the processor compares it: a repeated key must carry the same request,
/// or the processor refuses it instead of replaying an answer to a different question.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    call: Call,
    /// The payment's reference; empty for an authorization.
    reference: String,
    /// The amount; 0 for a void.
    amount_cents: i64,
}

/// A successful answer: the reference of the new payment or refund (empty for capture
/// and void) and, for an authorization, whether it needs a review.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Reply {
    reference: String,
    review: bool,
}

/// An outcome forced on the next call of a kind.
#[derive(Clone, Debug)]
enum Forced {
    Fail(PaymentError),
    SucceedThenTimeout,
}

/// The first answer given to an idempotency key, and the request it answered.
#[derive(Clone, Debug)]
struct KeyEntry {
    request: Request,
    result: Result<Reply, PaymentError>,
}

#[derive(Debug)]
struct Inner {
    rng: SmallRng,
    books: HashMap<String, Book>,
    refunds: HashMap<String, RefundEntry>,
    keys: HashMap<String, KeyEntry>,
    forced: HashMap<Call, VecDeque<Forced>>,
    calls: Vec<(Call, String)>,
    payments_made: u64,
    refunds_made: u64,
}

/// An in-memory payment processor with books, idempotency keys and injected failures.
#[derive(Debug)]
pub struct Simulator {
    config: SimulatorConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl Default for Simulator {
    fn default() -> Simulator {
        Simulator::new(SimulatorConfig::default())
    }
}

impl SimulatorConfig {
    pub fn with_seed(mut self, seed: u64) -> SimulatorConfig {
        self.seed = seed;
        self
    }
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Simulator {
        let rng = SmallRng::seed_from_u64(config.seed);
        Simulator {
            config,
            clock: Arc::new(SystemClock),
            inner: Mutex::new(Inner {
                rng,
                books: HashMap::new(),
                refunds: HashMap::new(),
                keys: HashMap::new(),
                forced: HashMap::new(),
                calls: Vec::new(),
                payments_made: 0,
                refunds_made: 0,
            }),
        }
    }

    /// Lets events happen at `clock`'s time (the shop's, in a simulation) instead of
    /// the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Simulator {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// Makes the next call of this kind fail with `error`. `Timeout` and `Unavailable`
    /// come before the effect and apply even to a repeated key; `Declined` and
    /// `Rejected` are the processor's answer to a new key and are replayed for it like
    /// any answer (a repeated key keeps its first answer). Forced outcomes queue up.
    pub fn fail_next(&self, call: Call, error: PaymentError) {
        self.force(call, Forced::Fail(error));
    }

    /// Makes the next call of this kind take effect as usual while its caller sees
    /// `Timeout`; a retry with the same key then returns the stored success.
    pub fn succeed_then_timeout_next(&self, call: Call) {
        self.force(call, Forced::SucceedThenTimeout);
    }

    fn force(&self, call: Call, outcome: Forced) {
        let mut inner = self.lock();
        inner.forced.entry(call).or_default().push_back(outcome);
    }

    /// Every call received so far, with its idempotency key, in arrival order
    /// (including failed and replayed ones).
    pub fn calls(&self) -> Vec<(Call, String)> {
        self.lock().calls.clone()
    }

    /// The money captured across all payments.
    pub fn total_captured(&self) -> i64 {
        self.sum(|book| book.captured)
    }

    /// The money refunded across all payments.
    pub fn total_refunded(&self) -> i64 {
        self.sum(|book| book.refunded)
    }

    fn sum(&self, amount: impl Fn(&Book) -> i64) -> i64 {
        let inner = self.lock();
        let amounts = inner.books.values().map(amount);
        amounts.fold(0, i64::saturating_add)
    }

    /// Nothing that can panic runs while the lock is held (amounts are checked with
    /// saturating arithmetic before they are added), so even a poisoned lock guards
    /// consistent books.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one call: latency, transport faults, idempotent replay, then the effect.
    async fn handle(
        &self,
        key: &str,
        call: Call,
        reference: &str,
        amount_cents: i64,
    ) -> Result<Reply, PaymentError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let config = &self.config;
        let request = Request {
            call,
            reference: reference.to_owned(),
            amount_cents,
        };
        let mut inner = self.lock();
        if config.keyed {
            let repeat = inner
                .calls
                .iter()
                .filter(|(c, k)| *c == call && k == key)
                .count();
            inner.rng = SmallRng::seed_from_u64(keyed_seed(config.seed, call, key, repeat));
        }
        inner.calls.push((call, key.to_owned()));
        let forced = inner.forced.get_mut(&call).and_then(VecDeque::pop_front);

        // Faults before the effect: the request never reached the books.
        if let Some(Forced::Fail(error @ (PaymentError::Timeout | PaymentError::Unavailable(_)))) =
            &forced
        {
            return Err(error.clone());
        }
        if inner.rng.r#gen::<f64>() < config.timeout_rate {
            return Err(PaymentError::Timeout);
        }
        if inner.rng.r#gen::<f64>() < config.error_rate {
            let message = "simulated processor outage".to_owned();
            return Err(PaymentError::Unavailable(message));
        }
        let timeout_after_success = matches!(forced, Some(Forced::SucceedThenTimeout))
            || inner.rng.r#gen::<f64>() < config.timeout_after_success_rate;

        let result = if let Some(entry) = inner.keys.get(key) {
            if entry.request != request {
                return Err(rejected(format!(
                    "idempotency key `{key}` was used for a different request"
                )));
            }
            entry.result.clone()
        } else {
            let result = match forced {
                Some(Forced::Fail(error)) => Err(error),
                _ => inner.execute(config, &request, key, self.clock.now()),
            };
            // Declines and rejections are answers and stick to the key; the faults
            // above happened before the processor looked at the request.
            let entry = KeyEntry {
                request,
                result: result.clone(),
            };
            inner.keys.insert(key.to_owned(), entry);
            result
        };
        match result {
            Ok(_) if timeout_after_success => Err(PaymentError::Timeout),
            other => other,
        }
    }
}

/// A seed for one keyed call: FNV-1a over the seed, the call kind, the key and the
/// repeat number, so that it is the same on every platform and run.
fn keyed_seed(seed: u64, call: Call, key: &str, repeat: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let call = call as u8;
    for byte in seed
        .to_le_bytes()
        .into_iter()
        .chain([call])
        .chain(key.bytes())
        .chain(repeat.to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn rejected(message: String) -> PaymentError {
    PaymentError::Rejected(message)
}

impl Inner {
    /// Applies a new request to the books, or says why the processor refuses it; an
    /// effect is an event that happens at `now`.
    fn execute(
        &mut self,
        config: &SimulatorConfig,
        request: &Request,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Reply, PaymentError> {
        let (reference, amount) = (&request.reference, request.amount_cents);
        if amount <= 0 && request.call != Call::Void {
            return Err(rejected(format!("amount must be positive, got {amount}")));
        }
        let (kind, amount, reply) = match request.call {
            Call::Authorize => {
                if self.rng.r#gen::<f64>() < config.decline_rate {
                    let code = DECLINE_CODES[self.rng.gen_range(0..DECLINE_CODES.len())];
                    let code = code.to_owned();
                    return Err(PaymentError::Declined { code });
                }
                let review = self.rng.r#gen::<f64>() < config.review_rate;
                self.payments_made += 1;
                let reference = if config.keyed {
                    format!(
                        "pay_{:016x}",
                        keyed_seed(config.seed, Call::Authorize, key, 0)
                    )
                } else {
                    format!("pay_{:06}", self.payments_made)
                };
                let book = Book {
                    authorized: amount,
                    captured: 0,
                    refunded: 0,
                    voided: false,
                    webhooks: Webhooks::default(),
                };
                self.books.insert(reference.clone(), book);
                let reply = Reply { reference, review };
                (ProcessorEventKind::Authorized, amount, reply)
            }
            Call::Capture => {
                let book = self.book(reference)?;
                if book.voided {
                    return Err(rejected(format!("payment `{reference}` was voided")));
                }
                if book.captured.saturating_add(amount) > book.authorized {
                    return Err(rejected(format!(
                        "capture of {amount} exceeds the authorization of `{reference}`: \
                         {} authorized, {} captured",
                        book.authorized, book.captured
                    )));
                }
                book.captured += amount;
                (ProcessorEventKind::Captured, amount, Reply::default())
            }
            Call::Void => {
                let book = self.book(reference)?;
                if book.voided {
                    return Err(rejected(format!("payment `{reference}` is already voided")));
                }
                if book.captured > 0 {
                    return Err(rejected(format!(
                        "payment `{reference}` has captured money; refund it instead"
                    )));
                }
                book.voided = true;
                let released = book.authorized;
                (ProcessorEventKind::Voided, released, Reply::default())
            }
            Call::Refund => {
                let book = self.book(reference)?;
                if book.refunded.saturating_add(amount) > book.captured {
                    return Err(rejected(format!(
                        "refund of {amount} exceeds what `{reference}` has left to refund: \
                         {} captured, {} refunded",
                        book.captured, book.refunded
                    )));
                }
                book.refunded += amount;
                self.refunds_made += 1;
                let refund_reference = if config.keyed {
                    format!("re_{:016x}", keyed_seed(config.seed, Call::Refund, key, 0))
                } else {
                    format!("re_{:06}", self.refunds_made)
                };
                let entry = RefundEntry {
                    payment: reference.clone(),
                    amount_cents: amount,
                    reversed: false,
                };
                self.refunds.insert(refund_reference.clone(), entry);
                let reply = Reply {
                    reference: refund_reference,
                    review: false,
                };
                (ProcessorEventKind::Refunded, amount, reply)
            }
        };
        let (payment, refund_reference) = match request.call {
            Call::Authorize => (&reply.reference, None),
            Call::Refund => (reference, Some(reply.reference.clone())),
            Call::Capture | Call::Void => (reference, None),
        };
        let happening = Happening {
            kind,
            amount_cents: amount,
            refund_reference,
        };
        self.happen(config, payment, happening, now)?;
        Ok(reply)
    }

    /// Records an event of the payment `reference`, whose books have changed already.
    fn happen(
        &mut self,
        config: &SimulatorConfig,
        reference: &str,
        happening: Happening,
        now: DateTime<Utc>,
    ) -> Result<ProcessorEvent, PaymentError> {
        let book = self.book(reference)?;
        Ok(book.webhooks.record(config, reference, happening, now))
    }

    fn book(&mut self, reference: &str) -> Result<&mut Book, PaymentError> {
        self.books
            .get_mut(reference)
            .ok_or_else(|| rejected(format!("unknown payment `{reference}`")))
    }
}

#[async_trait]
impl PaymentProcessor for Simulator {
    async fn authorize(&self, key: &str, amount_cents: i64) -> Result<Authorization, PaymentError> {
        let reply = self.handle(key, Call::Authorize, "", amount_cents).await?;
        Ok(Authorization {
            reference: reply.reference,
            amount_cents,
            review: reply.review,
        })
    }

    async fn capture(&self, key: &str, reference: &str, amount: i64) -> Result<(), PaymentError> {
        self.handle(key, Call::Capture, reference, amount).await?;
        Ok(())
    }

    async fn void(&self, key: &str, reference: &str) -> Result<(), PaymentError> {
        self.handle(key, Call::Void, reference, 0).await?;
        Ok(())
    }

    async fn refund(
        &self,
        key: &str,
        reference: &str,
        amount: i64,
    ) -> Result<String, PaymentError> {
        let reply = self.handle(key, Call::Refund, reference, amount).await?;
        Ok(reply.reference)
    }

    /// Reads the books. It has latency but no injected faults: reconciliation and
    /// tests use it to check what really happened, and a fault here would only hide
    /// that.
    async fn balance(&self, reference: &str) -> Result<Balance, PaymentError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let mut inner = self.lock();
        let book = inner.book(reference)?;
        Ok(Balance {
            authorized_cents: book.authorized,
            captured_cents: book.captured,
            refunded_cents: book.refunded,
            voided: book.voided,
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_webhooks;
