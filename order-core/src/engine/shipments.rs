//! Shipments run `machines/shipment.fsm` through the same machine-level steps as
//! orders (`machine.rs`): each parcel's row is locked after its order's, its guards and
//! actions are `ShipmentRules` (`shipment_rules.rs`), and each transition appends to
//! the parcel's own audit trail (`entity_transitions`) and the outbox in the same
//! transaction. [`Engine::follow_parcels`] then moves the order on when its parcels
//! call for it (the inbox does so after every carrier event): it ships once every unit
//! has left, is delivered once every parcel is, and comes back once every parcel was
//! returned to the sender.

use chrono::{DateTime, Utc};

use super::Engine;
use super::machine::{self, EntityError, Unchosen};
use super::shipment_rules::{ShipmentGuards, ShipmentRules, ShipmentStep};
use crate::error::{FireError, StoreError};
use crate::order::{self, Event as OrderEvent, State as OrderState};
use crate::shipment::{ActorKind, Event, Machine, Reason, State};
use crate::store::{NewEntityTransition, NewMessage};
use crate::types::{Actor, Command, OrderId, Outcome, ShipmentId};

/// The name shipment rows carry in `entity_transitions`.
pub const MACHINE: &str = <Machine as statemachine::Machine>::NAME;

/// An event for one parcel's machine.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ShipmentCommand {
    pub event: Event,
    pub actor: ActorKind,
    /// Who the staff member is (`support`, `admin`).
    pub actor_id: Option<String>,
    pub reason: Option<Reason>,
    /// When it happened, if not now (a webhook processed later): the window and the
    /// audit row use it.
    pub at: Option<DateTime<Utc>>,
    /// The inbox message or request that caused it.
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
}

impl ShipmentCommand {
    pub fn new(event: Event, actor: ActorKind) -> ShipmentCommand {
        ShipmentCommand {
            event,
            actor,
            actor_id: None,
            reason: None,
            at: None,
            external_id: None,
            metadata: serde_json::Value::Null,
        }
    }
}

machine::entity_command_builders!(ShipmentCommand, Reason);

/// What a parcel's transition did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ShipmentOutcome {
    pub shipment: ShipmentId,
    pub order: OrderId,
    pub event: Event,
    pub from: State,
    pub to: State,
    pub seq: i64,
}

/// Why a parcel's command was refused or failed; nothing of it was written.
pub type ShipmentError = EntityError<Machine>;

impl Engine {
    /// Fires `command` at shipment `shipment` of order `order`.
    pub async fn fire_shipment(
        &self,
        order: OrderId,
        shipment: ShipmentId,
        command: &ShipmentCommand,
    ) -> Result<ShipmentOutcome, ShipmentError> {
        self.check_staff::<Machine>(command.actor, command.actor_id.as_deref())
            .await?;
        let now = command.at.unwrap_or_else(|| self.clock.now());
        let mut tx = self.store.begin().await?;
        // Orders before shipments, always, so that two transactions never wait on
        // each other.
        let locked = tx.lock_order(order).await?;
        let parcel = tx.lock_shipment(shipment).await?;
        let (Some(locked), Some(parcel)) = (locked, parcel) else {
            return Err(ShipmentError::NotFound {
                order,
                entity: shipment.0,
            });
        };
        if parcel.order != order {
            return Err(ShipmentError::NotFound {
                order,
                entity: shipment.0,
            });
        }
        let from: State = parcel.state.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "shipment {shipment} is in `{}`, not a state of shipment.fsm",
                parcel.state
            ))
        })?;
        let listed = machine::listed::<Machine>(from, command.event, command.actor)?;
        let trail = tx.entity_trail(MACHINE, shipment.0).await?;
        let seq = trail.last().map_or(0, |row| row.seq) + 1;
        let mut step = ShipmentStep {
            tx: tx.as_mut(),
            engine: self,
            order: locked,
            shipment: parcel,
            trail,
            command,
            now,
            to: None,
            claims: Vec::new(),
        };
        let has_reason = command.reason.is_some();
        let mut guards = ShipmentGuards { step: &mut step };
        let spec = match machine::choose(&listed, command.actor, has_reason, now, &mut guards).await
        {
            Ok(spec) => spec,
            Err(Unchosen::Refused(refusal)) => return Err(refusal.into()),
            Err(Unchosen::Error(error)) => return Err(error),
        };
        step.to = Some(spec.to);
        let rules = ShipmentRules::new();
        for action in spec.actions.iter().chain(machine::hook_actions(spec)) {
            use crate::shipment::Actions as _;
            rules.run(action.action, &mut step).await?;
        }
        let row = NewEntityTransition {
            machine: MACHINE,
            entity: shipment.0,
            order,
            seq,
            event: command.event.as_str(),
            from: from.as_str(),
            to: spec.to.as_str(),
            actor_kind: command.actor.as_str(),
            actor_id: command.actor_id.as_deref(),
            reason: command.reason.map(|r| r.as_str()),
            is_override: spec.is_override,
            machine_hash: <Machine as statemachine::Machine>::SOURCE_HASH,
            external_id: command.external_id.as_deref(),
            metadata: &command.metadata,
            at: now,
        };
        step.tx.write_shipment_transition(&row).await?;
        let claims = std::mem::take(&mut step.claims);
        let messages = machine::emits(spec)
            .into_iter()
            .map(|n| n.as_str())
            .chain(claims);
        for kind in messages {
            let payload = serde_json::json!({
                "order": order, "shipment": shipment, "event": command.event,
                "from": from, "to": spec.to, "seq": seq,
            });
            let dedupe_key = format!("shipment:{shipment}:{seq}:{kind}");
            step.tx
                .enqueue(&NewMessage {
                    aggregate: order,
                    kind,
                    payload: &payload,
                    dedupe_key: &dedupe_key,
                    at: now,
                })
                .await?;
        }
        let written = step.order.clone();
        drop(step);
        if !tx.update_order(&written, now).await? {
            return Err(StoreError::Invalid(format!("order {order} changed concurrently")).into());
        }
        tx.commit().await?;
        Ok(ShipmentOutcome {
            shipment,
            order,
            event: command.event,
            from,
            to: spec.to,
            seq,
        })
    }

    /// Fires the order's step that its parcels now call for, if any, as the system
    /// (the carrier for a return): `ship` in processing once no parcel waits for
    /// pickup, `deliver` in shipped once every parcel arrived, `return_to_sender` once
    /// every parcel came back or was lost; parcels whose label was cancelled do not
    /// count. The
    /// order's guards decide (`all_items_shipped`, `all_shipments_delivered`): a
    /// refusal leaves the order as it is.
    pub async fn follow_parcels(&self, id: OrderId) -> Option<Outcome> {
        let (order, shipments) = match (self.store.order(id).await, self.store.shipments(id).await)
        {
            (Ok(Some(order)), Ok(shipments)) => (order, shipments),
            _ => return None,
        };
        let live: Vec<_> = shipments
            .iter()
            .filter(|s| s.state != "cancelled")
            .collect();
        // Asked only when every unit left, so that a partly packed order does not
        // collect a refused attempt per parcel event.
        let all_packed = || async {
            let items = self.store.items(id).await.unwrap_or_default();
            !items.is_empty() && items.iter().all(|i| i.qty_shipped == i.quantity)
        };
        let command = match order.state {
            OrderState::Processing
                if !live.is_empty()
                    && live.iter().all(|s| s.state != State::LabelCreated.as_str())
                    && all_packed().await =>
            {
                Command::new(OrderEvent::Ship, Actor::system())
            }
            OrderState::Shipped
                if !live.is_empty() && live.iter().all(|s| s.state == "delivered") =>
            {
                Command::new(OrderEvent::Deliver, Actor::system())
            }
            // Every parcel came back or was lost: nothing reached the customer, so
            // the order comes back as a whole (with `lost_in_transit` when a parcel was
            // lost) and can be refunded. A lost parcel's units were written off when
            // it was reported lost.
            OrderState::Shipped
                if !live.is_empty()
                    && live
                        .iter()
                        .all(|s| matches!(s.state.as_str(), "returned_to_sender" | "lost")) =>
            {
                let command = Command::new(OrderEvent::ReturnToSender, Actor::carrier());
                if live.iter().any(|s| s.state == "lost") {
                    command.reason(order::Reason::LostInTransit)
                } else {
                    command
                }
            }
            _ => return None,
        };
        match self.fire(id, command).await {
            Ok(outcome) => Some(outcome),
            Err(FireError::GuardFailed { .. }) => None,
            Err(error) => {
                tracing::warn!(order = %id, %error, "the order did not follow its parcels");
                None
            }
        }
    }
}
