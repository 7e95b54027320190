//! One simulated order: its customer's habits, and the next thing that happens to it.
//!
//! Parcels are the carrier's business: the agent only packs them (`add_shipment`, the
//! carrier making the label), and the order ships, is delivered or comes back as the
//! carrier's webhooks move its parcels (the world's inbox, `follow_parcels`). The agent
//! steps in where a shop's staff would: it packs again what was lost before the order
//! shipped, reports lost a parcel whose tracking went silent, and takes back an order
//! whose parcels did not all arrive.
//!
//! Paying is where a worker may die: with a small probability drawn from (seed, order,
//! step), the authorization or the capture runs on an engine that dies at the matching
//! [`CrashPoint`] in a task of its own (see `payments.rs`). The order then waits for
//! reconciliation or the processor's webhook to settle what the crash left in doubt.
//! Some customers leave their authorization uncaptured for days, long enough for the
//! processor to let it lapse.

use chrono::{DateTime, TimeDelta, Utc};
use order_core::engine::shipments::MACHINE;
use order_core::engine::{CrashPoint, ShipmentCommand, ShipmentError, ShipmentLine};
use order_core::order::{Event, Guard, Reason, State};
use order_core::{
    Actor, Command, Engine, FireError, OperationError, OrderId, Payment, Shipment, shipment,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::payments::{Crashable, chance, crashing};

/// The carrier that makes the simulated shop's labels.
pub const CARRIER_NAME: &str = "dhl";

/// How long a parcel's tracking may be silent before support reports it lost: longer
/// than any quiet spell of a journey the carrier finishes (it reports a parcel lost
/// itself after at most a week), so support only chases parcels the carrier gave up
/// on in a way the shop's machine refused.
pub const CHASE_AFTER: TimeDelta = TimeDelta::days(8);

/// How often packing a parcel again may find the shelf empty before the order is left
/// as it is.
const RESHIP_TRIES: u32 = 5;

/// The share of customers who leave their first authorization uncaptured for
/// [`HESITATION`] before paying.
const HESITATE_RATE: f64 = 0.06;

/// How long a hesitating customer leaves an authorization uncaptured: longer than the
/// processor lets one live in the simulation (`payments::EXPIRE_AFTER`), plus the
/// latest its `authorization_expired` webhook can come.
pub const HESITATION: TimeDelta = TimeDelta::days(2);

/// The parcel states in which the carrier still has the parcel.
const IN_FLIGHT: [shipment::State; 4] = [
    shipment::State::LabelCreated,
    shipment::State::InTransit,
    shipment::State::OutForDelivery,
    shipment::State::FailedAttempt,
];

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
}

/// Whether a step must run alone, in id order: it competes for stock. Packing a parcel
/// in `processing` takes stock when it replaces units that were lost.
pub fn competes_for_stock(state: State) -> bool {
    matches!(state, State::Pending | State::Cancelled | State::Processing)
}

impl Agent {
    fn rng(&self) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ (u64::from(self.steps) << 40))
    }

    /// Takes the order's next step at `now`, the order being in `state`.
    pub async fn step(&mut self, engine: &Engine, now: DateTime<Utc>, state: State) -> StepReport {
        let mut report = StepReport::default();
        let mut rng = self.rng();
        self.steps += 1;
        // Most steps take a few hours of simulated time; people are not instant.
        let mut wait = TimeDelta::minutes(rng.gen_range(30..240));
        if state != State::Confirmed {
            // Whatever a crash left in doubt was settled: the order moved on.
            self.in_doubt = None;
            self.resume_payment = false;
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
                let cancel =
                    Command::new(Event::Cancel, Actor::system()).reason(Reason::PaymentFailed);
                // Refused (and counted) until the attempts are exhausted.
                fire(engine, self.id, cancel, report).await.ok();
            }
            Err(err) => report.unexpected.push(format!("authorize_payment: {err}")),
        }
        None
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

    /// Packs what is left to ship (a part first, for some customers); the carrier makes
    /// the label, and the order ships once its parcels are picked up.
    async fn ship(&mut self, engine: &Engine, report: &mut StepReport) {
        let items = match engine.store().items(self.id).await {
            Ok(items) => items,
            Err(err) => return report.unexpected.push(format!("items: {err}")),
        };
        let left: Vec<ShipmentLine> = items
            .iter()
            .filter(|i| i.quantity > i.qty_shipped)
            .map(|i| ShipmentLine {
                item: i.id,
                quantity: i.quantity - i.qty_shipped,
            })
            .collect();
        if left.is_empty() {
            // Everything is packed: the order ships when the carrier picks the last
            // parcel up. The inbox moves it on; this only catches up if it could not.
            if engine.follow_parcels(self.id).await.is_some() {
                report.fired += 1;
            }
            return;
        }
        let nothing_shipped = items.iter().all(|i| i.qty_shipped == 0);
        let parcel = if self.persona.ships_in_parts && left.len() > 1 && nothing_shipped {
            &left[..1]
        } else {
            &left[..]
        };
        match engine
            .add_shipment(self.id, parcel, CARRIER_NAME, None)
            .await
        {
            Ok(_) => {}
            // Units of a parcel lost before the order shipped are gone, and the shelf
            // may have no more of a scarce product.
            Err(OperationError::OutOfStock { .. }) => {
                report.refused.push("out_of_stock:reship".to_owned());
                self.reship_refusals += 1;
                if nothing_shipped {
                    let refund = Command::new(Event::Refund, Actor::support("sue"))
                        .reason(Reason::LostInTransit)
                        .note("lost in transit, none left to send");
                    fire(engine, self.id, refund, report).await.ok();
                } else if self.reship_refusals >= RESHIP_TRIES {
                    self.done = true;
                    report.stranded = Some("lost parcel, out of stock".to_owned());
                }
            }
            Err(err) => report.unexpected.push(format!("add_shipment: {err}")),
        }
    }

    /// The order is on its way: support chases parcels gone silent, and once every
    /// parcel's journey ended without the order following (some were lost or returned
    /// to the sender), takes the order back so that it can be refunded.
    async fn shipped(&mut self, engine: &Engine, now: DateTime<Utc>, report: &mut StepReport) {
        let parcels = match engine.store().shipments(self.id).await {
            Ok(parcels) => parcels,
            Err(err) => return report.unexpected.push(format!("shipments: {err}")),
        };
        let in_flight: Vec<&Shipment> = parcels
            .iter()
            .filter(|p| IN_FLIGHT.iter().any(|s| s.as_str() == p.state))
            .collect();
        if !in_flight.is_empty() {
            for parcel in in_flight {
                self.chase(engine, parcel, now, report).await;
            }
            return;
        }
        // Every parcel delivered, or every one returned: the order follows by itself.
        if engine.follow_parcels(self.id).await.is_some() {
            report.fired += 1;
            return;
        }
        let lost = parcels
            .iter()
            .any(|p| p.state == shipment::State::Lost.as_str());
        let reason = if lost {
            Reason::LostInTransit
        } else {
            self.return_reason(engine, &parcels).await
        };
        let back = Command::new(Event::ReturnToSender, Actor::support("sam"))
            .reason(reason)
            .note("not every parcel arrived");
        fire(engine, self.id, back, report).await.ok();
    }

    /// The reason the carrier gave for the first parcel it returned, as the order
    /// machine's reason; `other` when it has none of its own.
    async fn return_reason(&self, engine: &Engine, parcels: &[Shipment]) -> Reason {
        let returned = shipment::State::ReturnedToSender.as_str();
        for parcel in parcels.iter().filter(|p| p.state == returned) {
            let Ok(trail) = engine.store().entity_trail(MACHINE, parcel.id.0).await else {
                continue;
            };
            let given = trail.last().and_then(|row| row.reason.as_deref());
            if let Some(reason) = given.and_then(|r| r.parse::<Reason>().ok()) {
                return reason;
            }
        }
        Reason::Other
    }

    /// Reports `parcel` lost when the carrier has said nothing of it for
    /// [`CHASE_AFTER`].
    async fn chase(
        &self,
        engine: &Engine,
        parcel: &Shipment,
        now: DateTime<Utc>,
        report: &mut StepReport,
    ) {
        if parcel.state == shipment::State::LabelCreated.as_str() {
            return;
        }
        let trail = match engine.store().entity_trail(MACHINE, parcel.id.0).await {
            Ok(trail) => trail,
            Err(err) => return report.unexpected.push(format!("entity_trail: {err}")),
        };
        let last_heard = trail
            .iter()
            .rev()
            .find(|row| row.actor_kind == shipment::ActorKind::Carrier.as_str())
            .map_or(parcel.shipped_at, |row| row.at);
        if now - last_heard < CHASE_AFTER {
            return;
        }
        let command =
            ShipmentCommand::new(shipment::Event::ReportLost, shipment::ActorKind::Support)
                .by("sam")
                .reason(shipment::Reason::LostInTransit);
        match engine.fire_shipment(self.id, parcel.id, &command).await {
            Ok(_) => {
                report.reported_lost += 1;
                if engine.follow_parcels(self.id).await.is_some() {
                    report.fired += 1;
                }
            }
            Err(ShipmentError::Refused(refusal)) => {
                report
                    .refused
                    .push(format!("shipment:{}", refusal_kind(&refusal)));
            }
            Err(err) => report.unexpected.push(format!("report_lost: {err}")),
        }
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

/// A refusal of the shipment machine by kind, e.g. `guard_failed`.
fn refusal_kind(refusal: &order_core::engine::machine::Refusal<shipment::Machine>) -> &'static str {
    use order_core::engine::machine::Refusal;
    match refusal {
        Refusal::InvalidTransition { .. } => "invalid_transition",
        Refusal::ActorNotAllowed { .. } => "actor_not_allowed",
        Refusal::ReasonRequired { .. } => "reason_required",
        Refusal::OutsideWindow { .. } => "outside_window",
        Refusal::GuardFailed { .. } => "guard_failed",
        _ => "refused",
    }
}

/// Fires a command and counts what happened.
async fn fire(
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
