//! The payment side of the simulated shop: the processor's webhooks, its own doings,
//! workers that die in the middle of a payment, reconciliation, and the money checks at
//! the end.
//!
//! - The payment simulator runs on the simulation's clock and tells the shop of every
//!   effect by webhooks that come late, twice or out of order. Every tick the world
//!   receives the deliveries due into the inbox and processes it, between the workers'
//!   steps.
//! - The processor's own doings are rare and drawn from (seed, order): a customer who
//!   leaves an authorization uncaptured for long may find it expired; a delivered order
//!   may get a partial chargeback; a refund of a settled order may be reversed.
//! - A payment step may run on an engine that dies at its [`CrashPoint`] inside a task
//!   of its own (a worker killed between the processor's answer and its commit);
//!   `reconcile_payments` runs every few ticks and at the end, and the processor's
//!   webhooks settle the rest.
//! - At the end, once every webhook was delivered and handled and reconciliation ran a
//!   last time, the books must hold: no order past payment without a captured payment,
//!   no cancelled order keeping money, and the processor's totals equal to the shop's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use order_core::engine::processor_inbox::ProcessorInbox;
use order_core::engine::{CrashPoint, PaymentCommand, PaymentFireError};
use order_core::order::State;
use order_core::payment::machine::{
    ActorKind as PaymentActor, Event as PaymentEvent, Reason as PaymentReason,
};
use order_core::{Engine, OrderId, OrderQuery};
use serde::Serialize;

use super::World;
use super::agent::{HESITATION, open_authorization};

/// Reconciliation runs every this many ticks (and at the end).
pub const RECONCILE_EVERY: u64 = 4;
/// How long an authorization stays uncaptured before the processor may let it lapse.
pub const EXPIRE_AFTER: TimeDelta = TimeDelta::days(1);
/// The share of authorizations left uncaptured for [`EXPIRE_AFTER`] that expire.
const EXPIRE_SHARE: f64 = 0.6;
/// The share of delivered orders whose card holder's bank takes part of the money back.
const CHARGEBACK_RATE: f64 = 0.06;
/// The share of delivered orders to which support gives part of the money back as a
/// goodwill gesture (a partial refund of the payment, through payment.fsm).
const GOODWILL_RATE: f64 = 0.08;
/// The share of refunded or cancelled orders whose refund the processor reverses.
const REVERSAL_RATE: f64 = 0.2;
/// How long after its event a webhook is first delivered: a delay drawn between these.
pub const WEBHOOK_DELAY: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(3 * 3600));
/// How long a webhook held back (delivered after its payment's next one) waits for
/// that next event at most.
pub const REORDER_HOLD: Duration = Duration::from_secs(6 * 3600);
/// The share of events delivered twice, and of events held back.
pub const DUPLICATE_RATE: f64 = 0.1;
pub const REORDER_RATE: f64 = 0.1;
/// The latest a duplicate comes after the first delivery (the simulator's rule).
const DUPLICATE_LAG: Duration = Duration::from_secs(6 * 3600);
/// How long the run goes on after the last order settled, so that every webhook the
/// processor still owes is delivered: more than the latest a delivery can come.
pub const SETTLE_FOR: TimeDelta = TimeDelta::days(1);

// Every delivery comes within SETTLE_FOR of its event.
const _: () = assert!(
    WEBHOOK_DELAY.1.as_secs() + REORDER_HOLD.as_secs() + DUPLICATE_LAG.as_secs()
        < SETTLE_FOR.num_seconds() as u64
);
// A hesitating customer comes back only after the expiry's first delivery: it is
// decided at the first tick after EXPIRE_AFTER, and delivered within the delay and a
// hold.
const _: () = assert!(
    EXPIRE_AFTER.num_seconds() as u64
        + super::TICK.num_seconds() as u64
        + WEBHOOK_DELAY.1.as_secs()
        + REORDER_HOLD.as_secs()
        < HESITATION.num_seconds() as u64
);

/// The processor's webhooks and what the inbox made of them, the processor's own
/// doings, the crashes and what reconciliation did, summed over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaymentsTally {
    /// Webhook deliveries received, duplicates included.
    pub webhooks_received: u64,
    /// Deliveries of an event the inbox already held, dropped on receipt.
    pub duplicates_dropped: u64,
    /// The processor's own doings recorded (expiries, chargebacks, reversals, refunds
    /// the shop had not recorded).
    pub applied: u64,
    /// Confirmations the books already agreed with.
    pub in_step: u64,
    /// Confirmations that found the books in doubt, settled by reconciliation.
    pub reconciled: u64,
    /// Events that no longer applied.
    pub stale: u64,
    /// Events for payments the shop does not know, or that its books refuse.
    pub refused: u64,
    /// Events received but not handled at the end (the store or the processor failed).
    pub pending: u64,
    /// Authorizations the processor let lapse.
    pub authorizations_expired: u64,
    /// Partial chargebacks on delivered orders.
    pub chargebacks: u64,
    /// Refunds the processor reversed.
    pub refunds_reversed: u64,
    /// Partial refunds support gave on delivered orders.
    pub goodwill_refunds: u64,
    /// Declined payments support retried (payment.fsm's `retry`), each authorized
    /// again under a fresh key.
    pub retries: u64,
    /// Workers that died at a crash point, by point (`authorized`, `captured`).
    pub crashes: BTreeMap<String, u64>,
    /// What `reconcile_payments` did, summed over its runs.
    pub reconcile: ReconcileTally,
}

impl PaymentsTally {
    pub fn new() -> PaymentsTally {
        let crashes = CrashPoint::ALL
            .iter()
            .map(|point| (point.as_str().to_owned(), 0))
            .collect();
        PaymentsTally {
            crashes,
            ..PaymentsTally::default()
        }
    }

    fn add_inbox(&mut self, report: &ProcessorInbox) {
        let count = |n: usize| n as u64;
        self.applied += count(report.applied);
        self.in_step += count(report.in_step);
        self.reconciled += count(report.reconciled);
        self.stale += count(report.stale);
        self.refused += count(report.refused);
    }

    /// Events handled so far, whatever came of them.
    fn handled(&self) -> u64 {
        self.applied + self.in_step + self.reconciled + self.stale + self.refused
    }
}

/// The figures of `Engine::reconcile_payments`, summed over its runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileTally {
    pub runs: u64,
    /// Payments compared with the processor's books (a payment counts once per run).
    pub checked: u64,
    pub authorizations_settled: u64,
    pub authorizations_voided: u64,
    pub captures_completed: u64,
    pub captures_refunded: u64,
}

/// The books at the end: the processor's totals, the shop's, and every money
/// invariant that does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Money {
    pub processor_captured_cents: i64,
    pub processor_refunded_cents: i64,
    /// The shop's captured payments (those a failed transition refunded included).
    pub books_captured_cents: i64,
    /// The shop's refunds that succeeded and were not reversed (chargebacks included).
    pub books_refunded_cents: i64,
    /// One line per broken invariant; empty when the books hold.
    pub problems: Vec<String>,
}

/// The payload of the panic that kills a simulated worker at a crash point.
#[derive(Debug)]
pub struct SimulatedCrash;

/// How a step run on a dying engine ended.
pub enum Crashable<T> {
    /// The crash point was not reached: the step's own result.
    Finished(T),
    /// The worker died at the crash point.
    Crashed,
    /// The worker died of something else: a bug.
    Panicked(String),
}

/// Runs `run` on a clone of `engine` that dies at `point`, in a task of its own: what
/// comes after the point (the commit, any undo) never runs, as if the process had been
/// killed there, while the processor keeps its books.
pub async fn crashing<T, F, Fut>(engine: &Engine, point: CrashPoint, run: F) -> Crashable<T>
where
    F: FnOnce(Engine) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    silence_simulated_crashes();
    let dying = engine.clone().with_crash_points(Arc::new(move |reached| {
        if reached == point {
            std::panic::panic_any(SimulatedCrash);
        }
    }));
    match tokio::spawn(run(dying)).await {
        Ok(result) => Crashable::Finished(result),
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            if payload.is::<SimulatedCrash>() {
                Crashable::Crashed
            } else if let Some(text) = payload.downcast_ref::<&str>() {
                Crashable::Panicked((*text).to_owned())
            } else if let Some(text) = payload.downcast_ref::<String>() {
                Crashable::Panicked(text.clone())
            } else {
                Crashable::Panicked("a panic".to_owned())
            }
        }
        Err(error) => Crashable::Panicked(error.to_string()),
    }
}

/// Keeps the panic hook quiet about simulated crashes (they are counted in the
/// summary); any other panic is reported as before.
fn silence_simulated_crashes() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<SimulatedCrash>() {
                previous(info);
            }
        }));
    });
}

/// A number drawn from (seed, order, tag, n): FNV-1a, the same on every platform and
/// run, and independent of the order in which workers reach it.
pub fn draw(seed: u64, order: OrderId, tag: &str, n: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed
        .to_le_bytes()
        .into_iter()
        .chain(order.0.to_le_bytes())
        .chain(n.to_le_bytes())
        .chain(tag.bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits are weak for short inputs: mix them (splitmix64's finalizer).
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// A draw in `0.0..1.0` from (seed, order, tag, n).
pub fn chance(seed: u64, order: OrderId, tag: &str, n: u32) -> f64 {
    (draw(seed, order, tag, n) >> 11) as f64 / (1u64 << 53) as f64
}

impl World {
    /// The payment side of a tick: the processor's webhooks, reconciliation every
    /// [`RECONCILE_EVERY`] ticks, then the processor's own doings.
    pub(super) async fn payment_news(
        &mut self,
        now: DateTime<Utc>,
        tick: u64,
    ) -> anyhow::Result<()> {
        self.processor_webhooks(now).await?;
        if tick.checked_rem(RECONCILE_EVERY) == Some(0) {
            self.reconcile().await?;
        }
        self.happenings(now).await
    }

    /// The processor's webhooks due at `now` into the inbox, then the inbox processed.
    async fn processor_webhooks(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let deliveries = self.payments.webhooks_until(now);
        let tally = &mut self.tally.payments;
        for event in &deliveries {
            tally.webhooks_received += 1;
            let new = self
                .engine
                .receive_processor_event(event)
                .await
                .context("cannot receive a processor webhook")?;
            if new {
                tally.pending += 1;
            } else {
                tally.duplicates_dropped += 1;
            }
        }
        if tally.pending == 0 {
            return Ok(());
        }
        match self.engine.process_processor_inbox().await {
            Ok(report) => {
                let before = tally.handled();
                tally.add_inbox(&report);
                tally.pending -= (tally.handled() - before).min(tally.pending);
            }
            Err(err) => self
                .tally
                .unexpected
                .push(format!("process_processor_inbox: {err}")),
        }
        Ok(())
    }

    /// Settles what crashes left in doubt.
    async fn reconcile(&mut self) -> anyhow::Result<()> {
        match self.engine.reconcile_payments().await {
            Ok(done) => {
                let count = |n: usize| n as u64;
                let r = &mut self.tally.payments.reconcile;
                r.runs += 1;
                r.checked += count(done.checked);
                r.authorizations_settled += count(done.authorizations_settled);
                r.authorizations_voided += count(done.authorizations_voided);
                r.captures_completed += count(done.captures_completed);
                r.captures_refunded += count(done.captures_refunded);
                // Each completed capture is a `pay` transition.
                self.tally.fired += count(done.captures_completed);
            }
            Err(err) => self
                .tally
                .unexpected
                .push(format!("reconcile_payments: {err}")),
        }
        Ok(())
    }

    /// The processor's own doings, drawn from (seed, order): authorizations left
    /// uncaptured for [`EXPIRE_AFTER`] may lapse; once an order settled, a delivered
    /// one may get a partial chargeback, and a refunded or cancelled one its refund
    /// reversed. Orders are looked at in id order, each once.
    async fn happenings(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        for i in 0..self.agents.len() {
            let id = self.agents[i].id;
            let lingering = self.agents[i].lingering_since;
            if lingering.is_some_and(|since| now - since >= EXPIRE_AFTER) {
                self.agents[i].lingering_since = None;
                if chance(self.seed, id, "expire", 0) < EXPIRE_SHARE {
                    self.expire(id).await?;
                }
            }
            if self.agents[i].done && !self.agents[i].examined {
                self.agents[i].examined = true;
                self.examine(id).await?;
            }
        }
        Ok(())
    }

    /// Lets the order's open authorization lapse at the processor.
    async fn expire(&mut self, id: OrderId) -> anyhow::Result<()> {
        let payments = self.engine.store().payments(id).await?;
        let Some(reference) = open_authorization(&payments).and_then(|p| p.processor_ref.clone())
        else {
            return Ok(());
        };
        if self.payments.expire_authorization(&reference).is_ok() {
            self.tally.payments.authorizations_expired += 1;
        }
        Ok(())
    }

    /// A settled order: a goodwill refund or a chargeback (or both) on a delivered
    /// one, a reversed refund on a refunded or cancelled one, or nothing.
    async fn examine(&mut self, id: OrderId) -> anyhow::Result<()> {
        let store = self.engine.store().clone();
        let Some(order) = store.order(id).await? else {
            return Ok(());
        };
        if order.state == State::Delivered && chance(self.seed, id, "goodwill", 0) < GOODWILL_RATE {
            self.goodwill(id).await?;
        }
        match order.state {
            State::Delivered if chance(self.seed, id, "chargeback", 0) < CHARGEBACK_RATE => {
                let payments = store.payments(id).await?;
                let captured = payments
                    .iter()
                    .filter(|p| matches!(p.state.as_str(), "captured" | "partially_refunded"))
                    .find_map(|p| Some((p.processor_ref.clone()?, p.amount_cents)));
                let Some((reference, amount)) = captured else {
                    return Ok(());
                };
                // A part of it: 10 % to 50 %.
                let share = 10 + i64::try_from(draw(self.seed, id, "share", 0) % 41).unwrap_or(0);
                let amount = (amount * share / 100).max(1);
                if self.payments.chargeback(&reference, amount).is_ok() {
                    self.tally.payments.chargebacks += 1;
                }
            }
            State::Refunded | State::Cancelled
                if chance(self.seed, id, "reversal", 0) < REVERSAL_RATE =>
            {
                let payments = store.payments(id).await?;
                let refunds = store.refunds(id).await?;
                // A refund the shop made of money it holds as captured.
                let refund = refunds.iter().find(|r| {
                    r.state == "succeeded"
                        && r.processor_ref.is_some()
                        && payments
                            .iter()
                            .any(|p| p.id == r.payment && p.holds_capture())
                });
                let Some(reference) = refund.and_then(|r| r.processor_ref.clone()) else {
                    return Ok(());
                };
                if self.payments.reverse_refund(&reference).is_ok() {
                    self.tally.payments.refunds_reversed += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Support gives back 5 % to 30 % of a delivered order's payment: a partial refund
    /// fired at the payment's own machine.
    async fn goodwill(&mut self, id: OrderId) -> anyhow::Result<()> {
        let payments = self.engine.store().payments(id).await?;
        let Some(payment) = payments.iter().find(|p| p.state == "captured") else {
            return Ok(());
        };
        let share = 5 + i64::try_from(draw(self.seed, id, "goodwill_share", 0) % 26).unwrap_or(0);
        let amount = (payment.amount_cents * share / 100).max(1);
        let refund = PaymentCommand::new(PaymentEvent::Refund, PaymentActor::Support)
            .by("sue")
            .reason(PaymentReason::Goodwill)
            .amount(amount);
        match self.engine.fire_payment(id, payment.id, &refund).await {
            Ok(_) => self.tally.payments.goodwill_refunds += 1,
            // The processor may be down for this call; the customer does without.
            Err(PaymentFireError::ActionFailed { .. }) => {}
            Err(error) => return Err(error).context("a goodwill refund"),
        }
        Ok(())
    }

    /// After the last order settled: the clock runs on for [`SETTLE_FOR`] so that every
    /// webhook owed is delivered and handled, reconciliation runs a last time, and the
    /// clock runs on again for the webhooks of what it did.
    pub(super) async fn settle_payments(&mut self) -> anyhow::Result<()> {
        let tick = super::TICK;
        let ticks = SETTLE_FOR.num_seconds() / tick.num_seconds();
        for round in 0..2 {
            for n in 1..=ticks {
                self.clock.advance(tick);
                let now = order_core::clock::Clock::now(self.clock.as_ref());
                self.payment_news(now, u64::try_from(n).unwrap_or(0))
                    .await?;
            }
            if round == 0 {
                self.reconcile().await?;
            }
        }
        Ok(())
    }

    /// The money invariants, from the store's payments and refunds and the processor's
    /// totals.
    pub(super) async fn check_money(&mut self) -> anyhow::Result<()> {
        const PAID: [State; 4] = [
            State::Paid,
            State::Processing,
            State::Shipped,
            State::Delivered,
        ];
        let store = self.engine.store().clone();
        let mut money = Money {
            processor_captured_cents: self.payments.total_captured(),
            processor_refunded_cents: self.payments.total_refunded(),
            ..Money::default()
        };
        let mut query = OrderQuery::new().limit(500);
        loop {
            let orders = store.list(&query).await?;
            let Some(last) = orders.last() else {
                break;
            };
            query = query.after(last.id);
            for order in &orders {
                let payments = store.payments(order.id).await?;
                let refunds = store.refunds(order.id).await?;
                let captured: i64 = payments
                    .iter()
                    .filter(|p| p.holds_capture())
                    .map(|p| p.amount_cents)
                    .sum();
                let refunded = |held: &dyn Fn(&order_core::Refund) -> bool| -> i64 {
                    refunds
                        .iter()
                        .filter(|r| r.state == "succeeded" && held(r))
                        .map(|r| r.amount_cents)
                        .sum()
                };
                money.books_captured_cents += captured;
                money.books_refunded_cents += refunded(&|_| true);
                if PAID.contains(&order.state) && !payments.iter().any(|p| p.holds_capture()) {
                    money.problems.push(format!(
                        "order {} is {} without a captured payment",
                        order.id, order.state
                    ));
                }
                if order.state == State::Cancelled {
                    let held: i64 = payments
                        .iter()
                        .filter(|p| p.holds_capture())
                        .map(|p| p.amount_cents - refunded(&|r| r.payment == p.id))
                        .sum();
                    if held > 0 {
                        money.problems.push(format!(
                            "cancelled order {} holds {held} cents captured and not refunded",
                            order.id
                        ));
                    }
                }
            }
        }
        if money.processor_captured_cents != money.books_captured_cents {
            money.problems.push(format!(
                "the processor captured {} cents, the books say {}",
                money.processor_captured_cents, money.books_captured_cents
            ));
        }
        if money.processor_refunded_cents != money.books_refunded_cents {
            money.problems.push(format!(
                "the processor refunded {} cents, the books say {}",
                money.processor_refunded_cents, money.books_refunded_cents
            ));
        }
        if self.tally.payments.pending > 0 {
            money.problems.push(format!(
                "{} processor webhook(s) were never handled",
                self.tally.payments.pending
            ));
        }
        self.tally.money = money;
        Ok(())
    }
}
