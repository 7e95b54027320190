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
//! Every random draw comes from one seeded generator, so a run is reproducible from its
//! seed and the order of its calls. With `keyed` draws the generator is reseeded per
//! call from the seed, the idempotency key and how often the key was used, and
//! references derive from keys, so a run is reproducible whatever the order of calls
//! from concurrent workers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Authorization, Balance, PaymentError, PaymentProcessor};

/// The decline codes an authorization may fail with, as a card network reports them.
const DECLINE_CODES: [&str; 3] = ["insufficient_funds", "card_declined", "expired_card"];

/// How often the simulator fails, how slow it is, and the seed of its randomness.
/// Rates are probabilities in `0.0..=1.0`, drawn independently per call.
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
}

/// A processor that never fails and answers at once, so tests that are not about
/// failures need no configuration.
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
#[derive(Clone, Debug)]
struct Book {
    authorized: i64,
    captured: i64,
    refunded: i64,
    voided: bool,
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
            inner: Mutex::new(Inner {
                rng,
                books: HashMap::new(),
                keys: HashMap::new(),
                forced: HashMap::new(),
                calls: Vec::new(),
                payments_made: 0,
                refunds_made: 0,
            }),
        }
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
                _ => inner.execute(config, &request, key),
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
    /// Applies a new request to the books, or says why the processor refuses it.
    fn execute(
        &mut self,
        config: &SimulatorConfig,
        request: &Request,
        key: &str,
    ) -> Result<Reply, PaymentError> {
        let (reference, amount) = (&request.reference, request.amount_cents);
        if amount <= 0 && request.call != Call::Void {
            return Err(rejected(format!("amount must be positive, got {amount}")));
        }
        match request.call {
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
                };
                self.books.insert(reference.clone(), book);
                Ok(Reply { reference, review })
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
                Ok(Reply::default())
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
                Ok(Reply::default())
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
                let reference = if config.keyed {
                    format!("re_{:016x}", keyed_seed(config.seed, Call::Refund, key, 0))
                } else {
                    format!("re_{:06}", self.refunds_made)
                };
                Ok(Reply {
                    reference,
                    review: false,
                })
            }
        }
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
mod tests {
    use super::*;
    use std::fmt::Debug;

    fn rejected_with(result: Result<impl Debug, PaymentError>, needle: &str) -> bool {
        matches!(result, Err(PaymentError::Rejected(m)) if m.contains(needle))
    }

    async fn authorized(sim: &Simulator, key: &str, amount: i64) -> String {
        let auth = sim.authorize(key, amount).await.expect("authorized");
        auth.reference
    }

    #[tokio::test]
    async fn repeated_keys_replay_the_first_answer_and_act_once() {
        let sim = Simulator::default();
        let first = sim.authorize("a1", 1000).await.expect("authorized");
        assert_eq!(first.reference, "pay_000001");
        assert_eq!(sim.authorize("a1", 1000).await, Ok(first.clone()));
        assert!(rejected_with(
            sim.authorize("a1", 999).await,
            "different request"
        ));
        let pay = first.reference;
        sim.capture("c1", &pay, 1000).await.expect("captured");
        sim.capture("c1", &pay, 1000).await.expect("replayed");
        assert_eq!(sim.total_captured(), 1000, "captured once");
        let refund = sim.refund("r1", &pay, 400).await.expect("refunded");
        assert_eq!(refund, "re_000001");
        assert_eq!(sim.refund("r1", &pay, 400).await, Ok(refund));
        assert_eq!(sim.total_refunded(), 400, "refunded once");
        assert_eq!(authorized(&sim, "a2", 5).await, "pay_000002");
        assert_eq!(sim.calls().len(), 8, "replays are calls too");
    }

    #[tokio::test]
    async fn captures_stop_at_the_authorization_and_refunds_at_the_capture() {
        let sim = Simulator::default();
        let pay = authorized(&sim, "a1", 1000).await;
        assert!(rejected_with(sim.refund("r0", &pay, 1).await, "exceeds"));
        sim.capture("c1", &pay, 600).await.expect("captured");
        assert!(rejected_with(sim.capture("c2", &pay, 401).await, "exceeds"));
        sim.capture("c3", &pay, 400).await.expect("captured");
        assert!(rejected_with(
            sim.capture("c4", &pay, i64::MAX).await,
            "exceeds"
        ));
        sim.refund("r1", &pay, 700).await.expect("refunded");
        assert!(rejected_with(sim.refund("r2", &pay, 301).await, "exceeds"));
        sim.refund("r3", &pay, 300).await.expect("refunded");
        assert!(rejected_with(sim.refund("r4", &pay, 1).await, "exceeds"));
        assert!(rejected_with(sim.capture("c5", &pay, 0).await, "positive"));
        let balance = sim.balance(&pay).await.expect("known");
        assert_eq!(
            (balance.captured_cents, balance.refunded_cents),
            (1000, 1000)
        );
    }

    #[tokio::test]
    async fn void_releases_an_authorization_but_not_a_capture() {
        let sim = Simulator::default();
        let voided = authorized(&sim, "a1", 1000).await;
        sim.void("v1", &voided).await.expect("voided");
        sim.void("v1", &voided).await.expect("replayed");
        assert!(rejected_with(
            sim.void("v2", &voided).await,
            "already voided"
        ));
        assert!(rejected_with(sim.capture("c1", &voided, 1).await, "voided"));
        assert!(sim.balance(&voided).await.expect("known").voided);
        let captured = authorized(&sim, "a2", 1000).await;
        sim.capture("c2", &captured, 100).await.expect("captured");
        assert!(rejected_with(sim.void("v3", &captured).await, "refund it"));
        for unknown in [
            sim.capture("c", "pay_9", 1).await,
            sim.void("v", "pay_9").await,
            sim.refund("r", "pay_9", 1).await.map(drop),
            sim.balance("pay_9").await.map(drop),
        ] {
            assert!(rejected_with(unknown, "unknown payment"));
        }
    }

    fn flaky(decline: f64, seed: u64) -> Simulator {
        Simulator::new(SimulatorConfig {
            decline_rate: decline,
            timeout_rate: 0.1,
            error_rate: 0.1,
            timeout_after_success_rate: 0.1,
            review_rate: 0.2,
            latency: Duration::ZERO,
            seed,
            keyed: false,
        })
    }

    #[tokio::test]
    async fn keyed_draws_do_not_depend_on_the_order_of_calls() {
        let keyed = |seed| {
            Simulator::new(
                SimulatorConfig {
                    decline_rate: 0.5,
                    keyed: true,
                    ..SimulatorConfig::default()
                }
                .with_seed(seed),
            )
        };
        let keys: Vec<String> = (0..40).map(|i| format!("order-{i}-authorize-1")).collect();
        let (forward, backward) = (keyed(7), keyed(7));
        let mut ahead = Vec::new();
        for key in &keys {
            ahead.push((key.clone(), forward.authorize(key, 100).await));
        }
        let mut behind = Vec::new();
        for key in keys.iter().rev() {
            behind.push((key.clone(), backward.authorize(key, 100).await));
        }
        behind.reverse();
        assert_eq!(ahead, behind);
        let declined = ahead.iter().filter(|(_, r)| r.is_err()).count();
        assert!(
            (5..35).contains(&declined),
            "{declined} of 40 declined at rate 0.5"
        );
    }

    #[tokio::test]
    async fn decline_rate_one_always_declines_with_a_code() {
        let sim = Simulator::new(SimulatorConfig {
            decline_rate: 1.0,
            ..SimulatorConfig::default()
        });
        for i in 0..50 {
            match sim.authorize(&format!("a{i}"), 100).await {
                Err(PaymentError::Declined { code }) => assert!(DECLINE_CODES.contains(&&*code)),
                other => panic!("expected a decline, got {other:?}"),
            }
        }
        assert_eq!(
            sim.authorize("a0", 100).await,
            sim.authorize("a0", 100).await
        );
    }

    async fn outcomes(sim: &Simulator) -> Vec<String> {
        let mut seen = Vec::new();
        for i in 0..40 {
            seen.push(match sim.authorize(&format!("a{i}"), 100).await {
                Ok(auth) => {
                    let capture = sim.capture(&format!("c{i}"), &auth.reference, 100).await;
                    format!("{auth:?} {capture:?}")
                }
                Err(err) => format!("{err:?}"),
            });
        }
        seen
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_outcomes() {
        let first = outcomes(&flaky(0.2, 42)).await;
        assert_eq!(first, outcomes(&flaky(0.2, 42)).await);
        assert_ne!(
            first,
            outcomes(&flaky(0.2, 43)).await,
            "another seed differs"
        );
        for kind in ["Declined", "Timeout", "Unavailable", "review: true"] {
            assert!(
                first.iter().any(|o| o.contains(kind)),
                "no {kind}: {first:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_timeout_after_success_is_resolved_by_a_retry() {
        let sim = Simulator::default();
        sim.succeed_then_timeout_next(Call::Authorize);
        assert_eq!(sim.authorize("a1", 1000).await, Err(PaymentError::Timeout));
        let pay = authorized(&sim, "a1", 1000).await;
        assert_eq!(pay, "pay_000001", "the first call authorized");
        sim.succeed_then_timeout_next(Call::Capture);
        let in_doubt = sim.capture("c1", &pay, 1000).await;
        assert_eq!(in_doubt, Err(PaymentError::Timeout));
        assert_eq!(sim.total_captured(), 1000, "the capture happened");
        sim.capture("c1", &pay, 1000)
            .await
            .expect("the retry sees the success");
        assert_eq!(sim.total_captured(), 1000, "and happened once");
    }

    #[tokio::test]
    async fn fail_next_forces_the_next_calls_of_its_kind_only() {
        let sim = Simulator::default();
        let outage = PaymentError::Unavailable("down".to_owned());
        sim.fail_next(Call::Authorize, outage.clone());
        sim.fail_next(Call::Authorize, PaymentError::Timeout);
        sim.fail_next(Call::Capture, PaymentError::Timeout);
        assert_eq!(sim.authorize("a1", 100).await, Err(outage));
        assert_eq!(sim.authorize("a1", 100).await, Err(PaymentError::Timeout));
        let pay = authorized(&sim, "a1", 100).await;
        assert_eq!(
            sim.capture("c1", &pay, 100).await,
            Err(PaymentError::Timeout)
        );
        assert_eq!(
            sim.total_captured(),
            0,
            "a timeout before the effect did nothing"
        );
        sim.capture("c1", &pay, 100)
            .await
            .expect("the retry captures");
        let code = "card_declined".to_owned();
        sim.fail_next(Call::Authorize, PaymentError::Declined { code });
        let declined = sim.authorize("a2", 100).await;
        assert!(matches!(declined, Err(PaymentError::Declined { .. })));
        assert_eq!(
            sim.authorize("a2", 100).await,
            declined,
            "a decline is replayed"
        );
        let kinds: Vec<Call> = sim.calls().into_iter().map(|(call, _)| call).collect();
        assert_eq!(
            kinds[..5],
            [
                Call::Authorize,
                Call::Authorize,
                Call::Authorize,
                Call::Capture,
                Call::Capture
            ]
        );
    }

    #[tokio::test]
    async fn latency_delays_every_answer() {
        let latency = Duration::from_millis(20);
        let sim = Simulator::new(SimulatorConfig {
            latency,
            ..SimulatorConfig::default()
        });
        let start = std::time::Instant::now();
        sim.authorize("a1", 100).await.expect("authorized");
        assert!(start.elapsed() >= latency);
    }
}
