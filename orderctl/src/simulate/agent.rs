//! One simulated order: its customer's habits, and the next thing that happens to it.

use chrono::{DateTime, TimeDelta, Utc};
use order_core::engine::ShipmentLine;
use order_core::order::{Event, Reason, State};
use order_core::{Actor, Command, Engine, FireError, OrderId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What this order's people will do, drawn once from the seed.
#[derive(Clone, Debug)]
pub struct Persona {
    /// The customer never confirms: a cart for the final bulk clean-up.
    pub abandons: bool,
    pub cancels_pending: bool,
    pub cancels_confirmed: bool,
    pub refunds_when_paid: bool,
    pub ships_in_parts: bool,
    pub parcel_lost: bool,
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
            parcel_lost: rng.gen_bool(0.04),
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
    pub reopened: bool,
    pub done: bool,
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
}

/// Whether a step must run alone, in id order: it competes for stock.
pub fn competes_for_stock(state: State) -> bool {
    matches!(state, State::Pending | State::Cancelled)
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
        match state {
            State::Pending => self.pending(engine, &mut report).await,
            State::Confirmed => self.confirmed(engine, &mut report).await,
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
            State::Shipped => self.deliver(engine, &mut rng, &mut report).await,
            State::Returned => {
                if let Err(err) = engine.receive_return(self.id).await {
                    report.unexpected.push(format!("receive_return: {err}"));
                }
                let refund = Command::new(Event::Refund, Actor::system());
                fire(engine, self.id, refund, &mut report).await.ok();
            }
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

    async fn confirmed(&mut self, engine: &Engine, report: &mut StepReport) {
        if self.persona.cancels_confirmed {
            let cancel = Command::new(Event::Cancel, Actor::customer(&self.customer));
            fire(engine, self.id, cancel, report).await.ok();
            return;
        }
        match engine.authorize_payment(self.id).await {
            Ok(attempt) if attempt.outcome == "authorized" => {
                let pay = Command::new(Event::Pay, Actor::customer(&self.customer));
                if let Err(FireError::GuardFailed { .. }) = fire(engine, self.id, pay, report).await
                {
                    let cancel = Command::new(Event::Cancel, Actor::support("sam"))
                        .reason(Reason::FraudSuspected);
                    fire(engine, self.id, cancel, report).await.ok();
                }
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
    }

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
        let parcel = if self.persona.ships_in_parts
            && left.len() > 1
            && items.iter().all(|i| i.qty_shipped == 0)
        {
            &left[..1]
        } else {
            &left[..]
        };
        if !parcel.is_empty() {
            let tracking = format!("TRK-{}-{}", self.id, self.steps);
            if let Err(err) = engine
                .add_shipment(self.id, parcel, "dhl", Some(&tracking))
                .await
            {
                report.unexpected.push(format!("add_shipment: {err}"));
            }
        }
        let ship = Command::new(Event::Ship, Actor::system());
        // Refused while parts are still on the shelf: counted as a guard refusal.
        fire(engine, self.id, ship, report).await.ok();
    }

    async fn deliver(&mut self, engine: &Engine, rng: &mut SmallRng, report: &mut StepReport) {
        let shipments = match engine.store().shipments(self.id).await {
            Ok(shipments) => shipments,
            Err(err) => return report.unexpected.push(format!("shipments: {err}")),
        };
        for shipment in shipments.iter().filter(|s| s.state == "in_transit") {
            let outcome = if self.persona.parcel_lost {
                "lost"
            } else {
                "delivered"
            };
            if rng.gen_bool(0.7) {
                if let Err(err) = engine.shipment_update(self.id, shipment.id, outcome).await {
                    report.unexpected.push(format!("shipment_update: {err}"));
                }
            }
        }
        let event = if self.persona.parcel_lost {
            Event::ReturnToSender
        } else {
            Event::Deliver
        };
        let command = Command::new(event, Actor::carrier());
        fire(engine, self.id, command, report).await.ok();
    }
}

/// Fires a command and counts what happened.
async fn fire(
    engine: &Engine,
    id: OrderId,
    command: Command,
    report: &mut StepReport,
) -> Result<(), FireError> {
    match engine.fire(id, command).await {
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
