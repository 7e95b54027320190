//! Queries over orders: by state set, customer, time ranges and rollups, combined, with
//! keyset pagination.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::order::State;
use crate::types::{FulfillmentStatus, OrderId, PaymentStatus};

/// Which orders to list; every field narrows the result, empty fields do not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderQuery {
    /// Only orders in one of these states (none: any state).
    pub states: Vec<State>,
    /// No order in any of these states.
    pub not_states: Vec<State>,
    /// Only this customer's orders, by email.
    pub customer: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_from: Option<DateTime<Utc>>,
    pub updated_to: Option<DateTime<Utc>>,
    pub payment_status: Option<PaymentStatus>,
    pub fulfillment_status: Option<FulfillmentStatus>,
    /// Keyset pagination: only orders with a greater id.
    pub after: Option<OrderId>,
    /// At most this many (none: all).
    pub limit: Option<i64>,
}

impl OrderQuery {
    pub fn new() -> OrderQuery {
        OrderQuery::default()
    }

    pub fn in_states(mut self, states: &[State]) -> OrderQuery {
        self.states = states.to_vec();
        self
    }

    pub fn not_in_states(mut self, states: &[State]) -> OrderQuery {
        self.not_states = states.to_vec();
        self
    }

    pub fn customer(mut self, email: impl Into<String>) -> OrderQuery {
        self.customer = Some(email.into());
        self
    }

    pub fn created_between(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> OrderQuery {
        self.created_from = Some(from);
        self.created_to = Some(to);
        self
    }

    pub fn updated_between(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> OrderQuery {
        self.updated_from = Some(from);
        self.updated_to = Some(to);
        self
    }

    pub fn payment_status(mut self, status: PaymentStatus) -> OrderQuery {
        self.payment_status = Some(status);
        self
    }

    pub fn fulfillment_status(mut self, status: FulfillmentStatus) -> OrderQuery {
        self.fulfillment_status = Some(status);
        self
    }

    pub fn after(mut self, id: OrderId) -> OrderQuery {
        self.after = Some(id);
        self
    }

    pub fn limit(mut self, limit: i64) -> OrderQuery {
        self.limit = Some(limit);
        self
    }
}
