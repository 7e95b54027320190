//! The agent's parcel steps: packing what is left to ship, chasing parcels whose
//! tracking went silent, and taking back an order whose parcels did not all arrive.
//!
//! Parcels are the carrier's business: the agent only packs them (`add_shipment`, the
//! carrier making the label), and the order ships, is delivered or comes back as the
//! carrier's webhooks move its parcels (the world's inbox, `follow_parcels`). The agent
//! steps in where a shop's staff would: it packs again what was lost before the order
//! shipped, reports lost a parcel whose tracking went silent, and takes back an order
//! whose parcels did not all arrive.

use chrono::{DateTime, TimeDelta, Utc};
use order_core::engine::machine::Refusal;
use order_core::engine::shipments::MACHINE;
use order_core::engine::{ShipmentCommand, ShipmentError, ShipmentLine};
use order_core::order::{Event, Reason};
use order_core::{Actor, Command, Engine, OperationError, Shipment, shipment};

use super::agent::{Agent, StepReport, fire};

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

/// The parcel states in which the carrier still has the parcel.
const IN_FLIGHT: [shipment::State; 4] = [
    shipment::State::LabelCreated,
    shipment::State::InTransit,
    shipment::State::OutForDelivery,
    shipment::State::FailedAttempt,
];

impl Agent {
    /// Packs what is left to ship (a part first, for some customers); the carrier makes
    /// the label, and the order ships once its parcels are picked up.
    pub(super) async fn ship(&mut self, engine: &Engine, report: &mut StepReport) {
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
    pub(super) async fn shipped(
        &mut self,
        engine: &Engine,
        now: DateTime<Utc>,
        report: &mut StepReport,
    ) {
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
}

/// A refusal of a machine's table by kind, e.g. `guard_failed`.
pub fn refusal_kind<M: statemachine::Machine>(refusal: &Refusal<M>) -> &'static str {
    match refusal {
        Refusal::InvalidTransition { .. } => "invalid_transition",
        Refusal::ActorNotAllowed { .. } => "actor_not_allowed",
        Refusal::ReasonRequired { .. } => "reason_required",
        Refusal::OutsideWindow { .. } => "outside_window",
        Refusal::GuardFailed { .. } => "guard_failed",
        _ => "refused",
    }
}
