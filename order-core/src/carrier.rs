//! The parcel carrier seen from the shop: labels, created and voided with idempotency
//! keys, and the tracking events the carrier delivers by webhook; with a faithful,
//! seeded simulator of one.
//!
//! The carrier drives most of a shipment's life (`machines/shipment.fsm`): it picks the
//! parcel up, scans it, takes it out for delivery and delivers it, fails to, returns it
//! or loses it. The shop learns of each step only from a webhook, which may arrive
//! twice or out of order, so every event carries a stable id to deduplicate on and the
//! carrier's per-parcel counter to order by.

mod journey;
mod simulator;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use simulator::{CarrierCall, CarrierSimulator, CarrierSimulatorConfig};

use crate::shipment;

/// Why the carrier did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CarrierError {
    /// No answer in time. The request may or may not have taken effect; retrying with
    /// the same idempotency key is safe and tells which.
    #[error("timed out")]
    Timeout,
    /// The carrier failed; the request did not take effect.
    #[error("carrier error: {0}")]
    Unavailable(String),
    /// The carrier refuses the request (unknown label, parcel already picked up, ...);
    /// retrying the same request will not help.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// A shipping label: the carrier has registered the parcel and will pick it up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    /// The carrier's reference of the parcel, in every event about it.
    pub tracking_number: String,
}

/// A parcel carrier. Every call carries an idempotency key: calling again with the same
/// key returns the first call's result without doing anything twice.
///
/// What happens to a parcel afterwards reaches the shop as [`CarrierEvent`]s, pushed
/// by the carrier rather than returned from a call.
#[async_trait]
pub trait Carrier: Send + Sync + fmt::Debug {
    /// Registers a parcel for the shop's shipment `shipment_ref`, handed over to the
    /// carrier at `shipped_at`, and returns its label.
    async fn create_label(
        &self,
        key: &str,
        shipment_ref: &str,
        shipped_at: DateTime<Utc>,
    ) -> Result<Label, CarrierError>;
    /// Cancels a label. The carrier refuses once it has picked the parcel up: from then
    /// on the parcel is on its way and only the carrier's events end its journey.
    async fn void_label(&self, key: &str, tracking_number: &str) -> Result<(), CarrierError>;
}

/// What happened to a parcel: exactly the events of `shipment.fsm` that the carrier
/// fires, spelled as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierEventKind {
    PickUp,
    Scan,
    Dispatch,
    Deliver,
    AttemptFailed,
    ReturnToSender,
    ReportLost,
}

impl CarrierEventKind {
    pub const ALL: [CarrierEventKind; 7] = [
        CarrierEventKind::PickUp,
        CarrierEventKind::Scan,
        CarrierEventKind::Dispatch,
        CarrierEventKind::Deliver,
        CarrierEventKind::AttemptFailed,
        CarrierEventKind::ReturnToSender,
        CarrierEventKind::ReportLost,
    ];

    /// The event's name in `shipment.fsm`, which is also its serde spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            CarrierEventKind::PickUp => "pick_up",
            CarrierEventKind::Scan => "scan",
            CarrierEventKind::Dispatch => "dispatch",
            CarrierEventKind::Deliver => "deliver",
            CarrierEventKind::AttemptFailed => "attempt_failed",
            CarrierEventKind::ReturnToSender => "return_to_sender",
            CarrierEventKind::ReportLost => "report_lost",
        }
    }

    /// Whether `shipment.fsm` asks the carrier for a reason (`by carrier(reason)`):
    /// such events always carry one.
    pub const fn needs_reason(self) -> bool {
        matches!(
            self,
            CarrierEventKind::AttemptFailed
                | CarrierEventKind::ReturnToSender
                | CarrierEventKind::ReportLost
        )
    }
}

impl fmt::Display for CarrierEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tracking event as the carrier's webhook delivers it, and as the shop's inbox
/// stores it (serialized to JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierEvent {
    /// The carrier's id of the event: unique per event and the same in every delivery
    /// of it, so the inbox can drop duplicates.
    pub external_id: String,
    pub tracking_number: String,
    pub kind: CarrierEventKind,
    /// A reason code of `shipment.fsm`, present exactly when the kind needs one.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it happened at the carrier, which is earlier than when it is delivered.
    pub occurred_at: DateTime<Utc>,
    /// The carrier's counter of the parcel's events, from 1: webhooks arrive out of
    /// order, and a gap or an inversion tells the receiver that one is still on its way.
    pub sequence: u32,
}

#[cfg(test)]
mod tests {
    use super::shipment::{ActorKind, Event, Machine};
    use super::*;
    use statemachine::Machine as _;
    use std::collections::BTreeSet;

    #[test]
    fn the_kinds_are_exactly_the_carrier_events_of_the_shipment_machine() {
        let carrier_events: BTreeSet<&str> = Machine::TRANSITIONS
            .iter()
            .filter(|spec| spec.rule_for(ActorKind::Carrier).is_some())
            .map(|spec| spec.event.as_str())
            .collect();
        let kinds: BTreeSet<&str> = CarrierEventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, carrier_events);
        for kind in CarrierEventKind::ALL {
            let event: Event = kind.as_str().parse().expect("an event of the machine");
            let rules = Machine::TRANSITIONS
                .iter()
                .filter(|spec| spec.event == event)
                .filter_map(|spec| spec.rule_for(ActorKind::Carrier));
            for rule in rules {
                assert_eq!(rule.needs_reason, kind.needs_reason(), "{kind}");
            }
        }
    }

    #[test]
    fn events_serialize_with_the_machine_spelling_and_round_trip() {
        for kind in CarrierEventKind::ALL {
            let json = serde_json::to_value(kind).expect("serializable");
            assert_eq!(json, serde_json::Value::from(kind.as_str()));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        let event = CarrierEvent {
            external_id: "evt_SC01_3".to_owned(),
            tracking_number: "SC01".to_owned(),
            kind: CarrierEventKind::AttemptFailed,
            reason: Some("refused_by_recipient".to_owned()),
            occurred_at: "2026-03-02T10:15:00Z".parse().expect("a time"),
            sequence: 3,
        };
        let json = serde_json::to_string(&event).expect("serializable");
        assert!(json.contains(r#""kind":"attempt_failed""#), "{json}");
        let back: CarrierEvent = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, event);
        let without_reason = r#"{"external_id":"e","tracking_number":"t","kind":"scan",
            "occurred_at":"2026-03-02T10:15:00Z","sequence":2}"#;
        let scan: CarrierEvent = serde_json::from_str(without_reason).expect("deserializable");
        assert_eq!((scan.kind, scan.reason), (CarrierEventKind::Scan, None));
    }

    #[test]
    fn errors_read_as_sentences_in_lowercase() {
        assert_eq!(CarrierError::Timeout.to_string(), "timed out");
        let down = CarrierError::Unavailable("down".to_owned());
        assert_eq!(down.to_string(), "carrier error: down");
        let refused = CarrierError::Rejected("no".to_owned());
        assert_eq!(refused.to_string(), "rejected: no");
    }
}
