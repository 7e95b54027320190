//! The invariants of stored data, checked by `Store::verify`.

use serde::{Deserialize, Serialize};

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// Which invariant: `state_matches_audit`, `audit_sequence`, `shipment_matches_trail`
    /// (a shipment's state is where its own audit trail ends, when it has one),
    /// `entity_trail_sequence` (a payment's or shipment's trail is numbered 1..=n),
    /// `stock_matches_ledger`, `reserved_within_on_hand`, `order_reservation_negative`,
    /// `reservations_match_orders`.
    pub check: String,
    /// What is wrong, naming the rows.
    pub detail: String,
}

impl Finding {
    pub fn new(check: &str, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.to_owned(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}
