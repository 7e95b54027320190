//! Carrier webhooks: kept in the `inbox` once per external id, then applied to their
//! parcels' machines in the carrier's own order.
//!
//! Webhooks arrive twice and out of order. A second copy is dropped when it is
//! received (the inbox's key). Each event carries the carrier's per-parcel counter,
//! recorded in the audit row's metadata: an event at or below the last applied one is
//! stale; one whose predecessor is missing waits for it (`inbox_patience`), and after
//! that is applied if the parcel's state admits it, or waits on while it does not;
//! anything else is applied, or recorded as refused with the rule that refused it.

use super::Engine;
use super::machine::Refusal;
use super::shipments::{MACHINE, ShipmentCommand, ShipmentError};
use crate::carrier::CarrierEvent;
use crate::error::StoreError;
use crate::shipment::{ActorKind, Event, Reason};
use crate::types::InboxMessage;

/// The inbox source of carrier webhooks.
pub const CARRIER: &str = "carrier";

/// What one pass over the inbox did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxReport {
    pub applied: usize,
    /// At or below the parcel's last applied event.
    pub stale: usize,
    /// Refused by the parcel's machine, or for a parcel the shop does not know.
    pub refused: usize,
    /// Left for a later pass: an earlier event of the parcel has not arrived.
    pub waiting: usize,
    /// Orders moved on by their parcels (shipped, delivered, returned).
    pub orders_followed: usize,
}

impl Engine {
    /// Keeps a carrier webhook; false when the same event was received before.
    pub async fn receive_carrier_event(&self, event: &CarrierEvent) -> Result<bool, StoreError> {
        self.keep_webhook(CARRIER, &event.external_id, event).await
    }

    /// Keeps a webhook of `source` once per external id; false when it was kept before.
    pub(super) async fn keep_webhook<T: serde::Serialize>(
        &self,
        source: &str,
        external_id: &str,
        event: &T,
    ) -> Result<bool, StoreError> {
        let payload = serde_json::to_value(event)
            .map_err(|err| StoreError::Invalid(format!("cannot store a {source} event: {err}")))?;
        let mut tx = self.store.begin().await?;
        let new = tx
            .inbox_receive(source, external_id, &payload, self.clock.now())
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// The unprocessed webhooks of `source` read as `T`, and how many did not read as
    /// one (those are marked refused).
    pub(super) async fn pending_webhooks<T: serde::de::DeserializeOwned>(
        &self,
        source: &str,
    ) -> Result<(Vec<(InboxMessage, T)>, usize), StoreError> {
        let pending = {
            let mut tx = self.store.begin().await?;
            let pending = tx.inbox_pending(source, i64::MAX).await?;
            tx.rollback().await?;
            pending
        };
        let (mut events, mut refused) = (Vec::new(), 0);
        for message in pending {
            match serde_json::from_value::<T>(message.payload.clone()) {
                Ok(event) => events.push((message, event)),
                Err(err) => {
                    refused += 1;
                    let outcome = format!("refused: not a {source} event: {err}");
                    self.webhook_done(&message, &outcome).await?;
                }
            }
        }
        Ok((events, refused))
    }

    /// Applies the pending carrier events, each parcel's in its carrier's order,
    /// until a pass applies nothing more.
    pub async fn process_carrier_inbox(&self) -> Result<InboxReport, StoreError> {
        let mut report = InboxReport::default();
        loop {
            let (mut events, refused) = self.pending_webhooks::<CarrierEvent>(CARRIER).await?;
            report.refused += refused;
            events.sort_by(|a, b| {
                (&a.1.tracking_number, a.1.sequence).cmp(&(&b.1.tracking_number, b.1.sequence))
            });
            let before = report.clone();
            report.waiting = 0;
            for (message, event) in &events {
                self.apply_carrier_event(message, event, &mut report)
                    .await?;
            }
            let settled = |r: &InboxReport| r.applied + r.stale + r.refused;
            let progressed = settled(&report) > settled(&before);
            if !progressed || report.waiting == 0 {
                return Ok(report);
            }
        }
    }

    async fn apply_carrier_event(
        &self,
        message: &InboxMessage,
        event: &CarrierEvent,
        report: &mut InboxReport,
    ) -> Result<(), StoreError> {
        let parcel = {
            let mut tx = self.store.begin().await?;
            let parcel = tx.shipment_by_tracking(&event.tracking_number).await?;
            let trail = match &parcel {
                Some(p) => tx.entity_trail(MACHINE, p.id.0).await?,
                None => Vec::new(),
            };
            tx.rollback().await?;
            parcel.map(|p| (p, trail))
        };
        let Some((parcel, trail)) = parcel else {
            report.refused += 1;
            let outcome = format!(
                "refused: no shipment has tracking number {}",
                event.tracking_number
            );
            return self.webhook_done(message, &outcome).await;
        };
        let last_applied = trail
            .iter()
            .filter_map(|row| row.metadata.get("carrier_sequence")?.as_u64())
            .max()
            .unwrap_or(0);
        if u64::from(event.sequence) <= last_applied {
            report.stale += 1;
            return self.webhook_done(message, "stale").await;
        }
        // An earlier event is missing: give it time to arrive, so that the trail keeps
        // the carrier's order; after that, apply what the parcel's state admits.
        let early = u64::from(event.sequence) > last_applied + 1;
        if early && self.clock.now() - message.received_at < self.config.inbox_patience {
            report.waiting += 1;
            return Ok(());
        }
        let Some(command) = carrier_command(message, event) else {
            report.refused += 1;
            let outcome = format!("refused: `{}` is not an event of shipment.fsm", event.kind);
            return self.webhook_done(message, &outcome).await;
        };
        match self.fire_shipment(parcel.order, parcel.id, &command).await {
            Ok(_) => {
                report.applied += 1;
                self.webhook_done(message, "applied").await?;
                if self.follow_parcels(parcel.order).await.is_some() {
                    report.orders_followed += 1;
                }
                Ok(())
            }
            Err(ShipmentError::Refused(Refusal::InvalidTransition { .. }))
                if u64::from(event.sequence) > last_applied + 1 =>
            {
                report.waiting += 1;
                Ok(())
            }
            Err(ShipmentError::Refused(refusal)) => {
                report.refused += 1;
                self.webhook_done(message, &format!("refused: {refusal}"))
                    .await
            }
            // The store or the carrier failed: the event stays for the next pass.
            Err(error) => {
                tracing::warn!(external_id = %message.external_id, %error, "carrier event not applied");
                report.waiting += 1;
                Ok(())
            }
        }
    }

    /// Marks a webhook processed with what came of it.
    pub(super) async fn webhook_done(
        &self,
        message: &InboxMessage,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        tx.inbox_done(
            &message.source,
            &message.external_id,
            outcome,
            self.clock.now(),
        )
        .await?;
        tx.commit().await
    }
}

/// The shipment machine's command for a carrier event, at the time it happened.
fn carrier_command(message: &InboxMessage, event: &CarrierEvent) -> Option<ShipmentCommand> {
    let machine_event: Event = event.kind.as_str().parse().ok()?;
    let mut command = ShipmentCommand::new(machine_event, ActorKind::Carrier)
        .at(event.occurred_at)
        .external_id(&message.external_id)
        .metadata(serde_json::json!({ "carrier_sequence": event.sequence }));
    if let Some(reason) = &event.reason {
        // A reason the machine does not know is `other`, kept in the metadata.
        let known: Option<Reason> = reason.parse().ok();
        command = command.reason(known.unwrap_or(Reason::Other));
        command.metadata["carrier_reason"] = serde_json::Value::String(reason.clone());
    }
    Some(command)
}
