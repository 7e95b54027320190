//! One simulated order: its customer's habits, and the next thing that happens to it.
//!
//! Parcels are the carrier's business; the agent packs them and steps in where a
//! shop's staff would (`parcels.rs`). Some orders are split in two on the way, and the
//! new order gets an agent of its own (`split.rs`).
//!
//! Paying is where a worker may die: with a small probability drawn from (seed, order,
//! step), the authorization or the capture runs on an engine that dies at the matching
//! [`CrashPoint`] in a task of its own (see `payments.rs`). The order then waits for
//! reconciliation or the processor's webhook to settle what the crash left in doubt.
//! Some customers leave their authorization uncaptured for days, long enough for the
//! processor to let it lapse. When the processor declines, the customer usually tries
//! again with a new authorization; for some, support retries the declined payment
//! itself (payment.fsm's `retry`), which asks the processor again under a fresh key.

use chrono::{DateTime, TimeDelta, Utc};
use order_core::engine::{CrashPoint, PaymentCommand, PaymentFireError};
use order_core::order::{Event, Guard, Reason, State};
use order_core::payment::machine as payment;
use order_core::{Actor, Command, Engine, FireError, OrderId, Payment, PaymentId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::parcels::refusal_kind;
use super::payments::{Crashable, chance, crashing};
use super::split::Child;

/// The share of customers who leave their first authorization uncaptured for
/// [`HESITATION`] before paying.
const HESITATE_RATE: f64 = 0.06;

/// How long a hesitating customer leaves an authorization uncaptured: longer than the
/// processor lets one live in the simulation (`payments::EXPIRE_AFTER`), plus the
/// latest its `authorization_expired` webhook can come.
pub const HESITATION: TimeDelta = TimeDelta::days(2);

/// The share of declined authorizations that support retries (payment.fsm's `retry`)
/// rather than the customer asking for a new one.
const RETRY_SHARE: f64 = 1.0 / 3.0;

/// What this order's people will do, drawn once from the seed.
#[derive(Clone, Debug)]
pub struct Persona {
    /// The customer never confirms: a cart for the final bulk clean-up.
    pub abandons: bool,
    pub cancels_pending: bool,
    pub cancels_confirmed: bool,
    pub refunds_when_paid: bool,
    pub ships_in_parts: bool,
    pub returns_after_delivery: bool,
    pub reopened_by_admin: bool,
}

impl Persona {
    pub fn draw(rng: &mut SmallRng) -> Persona {
        Persona {
            abandons: rng.gen_bool(0.04),
            cancels_pending: rng.gen_bool(0.04),
            cancels_confirmed: rng.gen_bool(0.04),
            refunds_when_paid: rng.gen_bool(0.03),
            ships_in_parts: rng.gen_bool(0.3),
            returns_after_delivery: rng.gen_bool(0.08),
            reopened_by_admin: rng.gen_bool(0.3),
        }
    }
}

/// A simulated order and where it is in its life.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: OrderId,
    pub customer: String,
    pub persona: Persona,
    pub seed: u64,
    /// When its next step is due on the simulated clock.
    pub due: DateTime<Utc>,
    /// How many steps it took; each step draws from (seed, step).
    pub steps: u32,
    pub confirm_refusals: u32,
    /// Times packing a lost parcel's units again found the shelf empty.
    pub reship_refusals: u32,
    pub reopened: bool,
    pub done: bool,
    /// The share of payment steps that crash (`--crash-rate`).
    pub crash_rate: f64,
    /// A crash at this point left the order's payment in doubt: the order waits until
    /// reconciliation or the processor's webhook settles it.
    pub in_doubt: Option<CrashPoint>,
    /// An authorization waits to be captured: the next step pays with it, if it is
    /// still open, instead of asking for a new one.
    pub resume_payment: bool,
    /// The customer left an authorization uncaptured at this time (once per order);
    /// the world may let the processor expire it, and clears it once considered.
    pub lingering_since: Option<DateTime<Utc>>,
    pub hesitated: bool,
    /// The world looked at the settled order for the processor's own doings
    /// (chargebacks, reversed refunds).
    pub examined: bool,
    /// The processor declined this payment, and support retries it at the next step
    /// if the order is still `confirmed`.
    pub declined: Option<PaymentId>,
    /// The order was considered for a split already (once per order at most).
    pub split: bool,
}

/// What one step did.
#[derive(Debug, Default)]
pub struct StepReport {
    /// Transitions committed.
    pub fired: u64,
    /// Refusals by error kind, e.g. `guard_failed:inventory_available`.
    pub refused: Vec<String>,
    /// A failure the simulation did not expect (a bug, not a business refusal).
    pub unexpected: Vec<String>,
    /// Parcels support reported lost after their tracking went silent.
    pub reported_lost: u64,
    /// The order was left where it is with nothing more anyone can do: its shipped
    /// units were all lost or returned to the sender after it shipped, so none can be
    /// received back and `return_received` never holds (the reason, for the summary).
    pub stranded: Option<String>,
    /// The step's worker died at this point.
    pub crashed: Option<CrashPoint>,
    /// Declined payments support retried.
    pub retried: u64,
    /// The step split the order: the new order, for the world to give an agent.
    pub child: Option<Child>,
}

/// Whether a step must run alone, in id order: it competes for stock. Packing a parcel
/// in `processing` takes stock when it replaces units that were lost.
pub fn competes_for_stock(state: State) -> bool {
    matches!(state, State::Pending | State::Cancelled | State::Processing)
}

impl Agent {
    /// A new order's agent: its persona, then when it first acts (within the hour of
    /// `now`), drawn from `rng`.
    pub fn new(
        id: OrderId,
        customer: String,
        seed: u64,
        rng: &mut SmallRng,
        now: DateTime<Utc>,
        crash_rate: f64,
    ) -> Agent {
        Agent {
            id,
            customer,
            persona: Persona::draw(rng),
            seed,
            due: now + TimeDelta::minutes(rng.gen_range(0..60)),
            steps: 0,
            confirm_refusals: 0,
            reship_refusals: 0,
            reopened: false,
            done: false,
            crash_rate,
            in_doubt: None,
            resume_payment: false,
            lingering_since: None,
            hesitated: false,
            examined: false,
            declined: None,
            split: false,
        }
    }

    fn rng(&self) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ (u64::from(self.steps) << 40))
    }

    /// Takes the order's next step at `now`, the order being in `state`.
    pub async fn step(&mut self, engine: &Engine, now: DateTime<Utc>, state: State) -> StepReport {
        let mut report = StepReport::default();
        let mut rng = self.rng();
        // Decided before anything of this step changes the agent, as the world decided
        // when it chose to run this step alone.
        let splits = self.splits_now(state);
        self.steps += 1;
        // Most steps take a few hours of simulated time; people are not instant.
        let mut wait = TimeDelta::minutes(rng.gen_range(30..240));
        if state != State::Confirmed {
            // Whatever a crash left in doubt was settled: the order moved on.
            self.in_doubt = None;
            self.resume_payment = false;
            self.declined = None;
        }
        if splits && self.split(engine, &mut report).await {
            self.due = now + wait;
            return report;
        }
        match state {
            State::Pending => self.pending(engine, &mut report).await,
            State::Confirmed => {
                if let Some(later) = self.confirmed(engine, now, &mut report).await {
                    wait = later;
                }
            }
            State::Paid => {
                if self.persona.refunds_when_paid && rng.gen_bool(0.5) {
                    let refund = Command::new(Event::Refund, Actor::customer(&self.customer));
                    fire(engine, self.id, refund, &mut report).await.ok();
                } else {
                    let start = Command::new(Event::StartProcessing, Actor::system());
                    if let Err(FireError::OutsideWindow {
                        next_open: Some(at),
                        ..
                    }) = fire(engine, self.id, start, &mut report).await
                    {
                        // The warehouse is closed: come back when it opens.
                        wait = (at - now).max(TimeDelta::minutes(1));
                    }
                }
            }
            State::Processing => self.ship(engine, &mut report).await,
            State::Shipped => self.shipped(engine, now, &mut report).await,
            State::Returned => self.returned(engine, &mut report).await,
            State::Delivered => {
                if self.persona.returns_after_delivery && !self.reopened {
                    self.reopened = true;
                    let command = Command::new(Event::ReturnDelivered, Actor::support("sam"))
                        .reason(Reason::DamagedInTransit)
                        .note("customer sent photos");
                    fire(engine, self.id, command, &mut report).await.ok();
                } else {
                    self.done = true;
                }
            }
            State::Cancelled => {
                if self.persona.reopened_by_admin && !self.reopened && !self.persona.abandons {
                    self.reopened = true;
                    let reopen =
                        Command::new(Event::Reopen, Actor::admin("ada")).reason(Reason::Goodwill);
                    fire(engine, self.id, reopen, &mut report).await.ok();
                } else {
                    self.done = true;
                }
            }
            State::Refunded => self.done = true,
        }
        self.due = now + wait;
        report
    }

    async fn pending(&mut self, engine: &Engine, report: &mut StepReport) {
        if self.persona.abandons {
            // Left for the bulk clean-up at the end.
            self.done = true;
            return;
        }
        if self.persona.cancels_pending && !self.reopened {
            let cancel = Command::new(Event::Cancel, Actor::customer(&self.customer));
            fire(engine, self.id, cancel, report).await.ok();
            return;
        }
        let confirm = Command::new(Event::Confirm, Actor::system());
        if fire(engine, self.id, confirm, report).await.is_err() {
            self.confirm_refusals += 1;
            if self.confirm_refusals >= 3 {
                let cancel = Command::new(Event::Cancel, Actor::support("sue"))
                    .reason(Reason::OutOfStock)
                    .note("no restock expected");
                fire(engine, self.id, cancel, report).await.ok();
            }
        }
    }

    /// Pays: authorizes, then captures by firing `pay`. Returns how long to wait when
    /// the customer does not come back at the usual pace.
    async fn confirmed(
        &mut self,
        engine: &Engine,
        now: DateTime<Utc>,
        report: &mut StepReport,
    ) -> Option<TimeDelta> {
        if self.persona.cancels_confirmed {
            let cancel = Command::new(Event::Cancel, Actor::customer(&self.customer));
            fire(engine, self.id, cancel, report).await.ok();
            return None;
        }
        if self.in_doubt.is_some() || self.resume_payment {
            let payments = match engine.store().payments(self.id).await {
                Ok(payments) => payments,
                Err(err) => {
                    report.unexpected.push(format!("payments: {err}"));
                    return None;
                }
            };
            let open = open_authorization(&payments).is_some();
            if let Some(point) = self.in_doubt {
                // A pending authorization, or a capture the books do not show yet:
                // reconciliation or the processor's webhook settles it, not the
                // customer.
                let pending = payments.iter().any(|p| p.state == "initiated");
                if pending || (point == CrashPoint::Captured && open) {
                    return None;
                }
                self.in_doubt = None;
                self.resume_payment = point == CrashPoint::Authorized;
            }
            if std::mem::take(&mut self.resume_payment) && open {
                self.pay(engine, report).await;
                return None;
            }
        }
        if let Some(payment) = self.declined.take() {
            // Support asks again for the declined payment; the authorization below
            // then goes to the processor under the payment's fresh key.
            self.retry(engine, payment, report).await;
        }
        let id = self.id;
        let authorized = if self.crashes(CrashPoint::Authorized) {
            let run = crashing(engine, CrashPoint::Authorized, move |engine| async move {
                engine.authorize_payment(id).await
            });
            match run.await {
                Crashable::Finished(result) => result,
                Crashable::Crashed => {
                    report.crashed = Some(CrashPoint::Authorized);
                    self.in_doubt = Some(CrashPoint::Authorized);
                    return None;
                }
                Crashable::Panicked(why) => {
                    report
                        .unexpected
                        .push(format!("authorize_payment panicked: {why}"));
                    return None;
                }
            }
        } else {
            engine.authorize_payment(id).await
        };
        match authorized {
            Ok(attempt) if attempt.outcome == "authorized" => {
                if !self.hesitated && chance(self.seed, id, "hesitate", 0) < HESITATE_RATE {
                    // The customer leaves the money on hold for days.
                    self.hesitated = true;
                    self.lingering_since = Some(now);
                    self.resume_payment = true;
                    return Some(HESITATION);
                }
                self.pay(engine, report).await;
            }
            Ok(attempt) => {
                report.refused.push(format!("payment_{}", attempt.outcome));
                if attempt.outcome == "declined"
                    && chance(self.seed, id, "retry", self.steps) < RETRY_SHARE
                {
                    self.declined = Some(attempt.payment.id);
                }
                let cancel =
                    Command::new(Event::Cancel, Actor::system()).reason(Reason::PaymentFailed);
                // Refused (and counted) until the attempts are exhausted.
                fire(engine, self.id, cancel, report).await.ok();
            }
            Err(err) => report.unexpected.push(format!("authorize_payment: {err}")),
        }
        None
    }

    /// Support retries a declined payment (payment.fsm's `retry`, back to `initiated`).
    /// When the machine refuses (the order used up its attempts), the customer's new
    /// authorization that follows is all there is, as without support.
    async fn retry(&mut self, engine: &Engine, payment: PaymentId, report: &mut StepReport) {
        let retry = PaymentCommand::new(payment::Event::Retry, payment::ActorKind::Support)
            .by("sue")
            .reason(payment::Reason::Other);
        match engine.fire_payment(self.id, payment, &retry).await {
            Ok(_) => report.retried += 1,
            Err(PaymentFireError::Refused(refusal)) => report
                .refused
                .push(format!("payment_retry:{}", refusal_kind(&refusal))),
            Err(err) => report.unexpected.push(format!("retry: {err}")),
        }
    }

    /// Fires `pay`, which captures the open authorization; a fraud review that holds it
    /// back cancels the order.
    async fn pay(&mut self, engine: &Engine, report: &mut StepReport) {
        let (id, pay) = (
            self.id,
            Command::new(Event::Pay, Actor::customer(&self.customer)),
        );
        let result = if self.crashes(CrashPoint::Captured) {
            let run = crashing(engine, CrashPoint::Captured, move |engine| async move {
                engine.fire(id, pay).await
            });
            match run.await {
                Crashable::Finished(result) => result,
                Crashable::Crashed => {
                    report.crashed = Some(CrashPoint::Captured);
                    self.in_doubt = Some(CrashPoint::Captured);
                    return;
                }
                Crashable::Panicked(why) => {
                    report.unexpected.push(format!("pay panicked: {why}"));
                    return;
                }
            }
        } else {
            engine.fire(id, pay).await
        };
        if let Err(FireError::GuardFailed { .. }) = count(result, report) {
            let cancel =
                Command::new(Event::Cancel, Actor::support("sam")).reason(Reason::FraudSuspected);
            fire(engine, self.id, cancel, report).await.ok();
        }
    }

    /// Whether this step's payment call at `point` runs on a worker that dies there.
    fn crashes(&self, point: CrashPoint) -> bool {
        chance(self.seed, self.id, point.as_str(), self.steps) < self.crash_rate
    }

    /// The warehouse takes back what came back, and the system refunds.
    async fn returned(&mut self, engine: &Engine, report: &mut StepReport) {
        if let Err(err) = engine.receive_return(self.id).await {
            report.unexpected.push(format!("receive_return: {err}"));
        }
        let refund = Command::new(Event::Refund, Actor::system());
        if let Err(FireError::GuardFailed {
            guard: Guard::ReturnReceived,
            ..
        }) = fire(engine, self.id, refund, report).await
        {
            // Nothing of it counts as shipped any more: every parcel was lost or came
            // back to the shop, so nothing can be received, and no rule refunds it.
            let items = engine.store().items(self.id).await.unwrap_or_default();
            if items.iter().all(|i| i.qty_shipped == 0) {
                self.done = true;
                report.stranded = Some("returned with no units shipped".to_owned());
            }
        }
    }
}

/// Fires a command and counts what happened.
pub(super) async fn fire(
    engine: &Engine,
    id: OrderId,
    command: Command,
    report: &mut StepReport,
) -> Result<(), FireError> {
    count(engine.fire(id, command).await, report)
}

/// Counts what a fired command did.
fn count<T>(result: Result<T, FireError>, report: &mut StepReport) -> Result<(), FireError> {
    match result {
        Ok(_) => {
            report.fired += 1;
            Ok(())
        }
        Err(err) => {
            let kind = match &err {
                FireError::GuardFailed { guard, .. } => format!("guard_failed:{guard}"),
                // The processor's declines and timeouts are part of the simulation.
                FireError::ActionFailed { action, .. } => format!("action_failed:{action}"),
                FireError::Store { .. } | FireError::Conflict { .. } => {
                    report.unexpected.push(err.to_string());
                    err.kind().to_owned()
                }
                other => other.kind().to_owned(),
            };
            report.refused.push(kind);
            Err(err)
        }
    }
}

/// The open authorization of an order's payments, if its latest is one.
pub fn open_authorization(payments: &[Payment]) -> Option<&Payment> {
    payments
        .iter()
        .max_by_key(|p| p.attempt_no)
        .filter(|p| p.state == "authorized")
}
