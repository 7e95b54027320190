//! The payment processor seen from the shop: authorize, capture, void and refund, each
//! with an idempotency key, and a faithful simulator of one.

mod journal;
mod simulator;

/// One payment's lifecycle, `machines/payment.fsm`: every payment row runs it through
/// the engine beside its order, with its own audit trail.
pub mod machine {
    statemachine::machine!("../machines/payment.fsm");
}

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use journal::{JournalError, JournaledSimulator};
pub use simulator::{Call, Simulator, SimulatorConfig};

/// Why the processor did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The card or account refused; retrying the same request will not help.
    #[error("declined: {code}")]
    Declined { code: String },
    /// No answer in time. The request may or may not have taken effect; retrying with
    /// the same idempotency key is safe and tells which.
    #[error("timed out")]
    Timeout,
    /// The processor failed; the request did not take effect.
    #[error("processor error: {0}")]
    Unavailable(String),
    /// The request makes no sense (unknown reference, more than captured, ...).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// An authorization: money held on the customer's card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The processor's reference of the payment, used by capture and void.
    pub reference: String,
    pub amount_cents: i64,
    /// The processor's risk check asks for a manual review before capture.
    pub review: bool,
}

/// A payment processor. Every call carries an idempotency key: calling again with the
/// same key returns the first call's result without doing anything twice.
#[async_trait]
pub trait PaymentProcessor: Send + Sync + std::fmt::Debug {
    async fn authorize(&self, key: &str, amount_cents: i64) -> Result<Authorization, PaymentError>;
    /// Captures `amount_cents` (at most what was authorized) of an authorization.
    async fn capture(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<(), PaymentError>;
    /// Releases an authorization that was not captured.
    async fn void(&self, key: &str, reference: &str) -> Result<(), PaymentError>;
    /// Refunds captured money; the total refunded never exceeds what was captured.
    /// Returns the refund's reference.
    async fn refund(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<String, PaymentError>;
    /// What the processor holds for a payment: authorized, captured and refunded
    /// amounts. Used by reconciliation and by tests to check the books.
    async fn balance(&self, reference: &str) -> Result<Balance, PaymentError>;
}

/// A payment's amounts at the processor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub authorized_cents: i64,
    pub captured_cents: i64,
    pub refunded_cents: i64,
    pub voided: bool,
}

/// What a processor webhook reports about a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProcessorEventKind {
    /// Confirmations of the shop's own requests.
    Authorized,
    Captured,
    Voided,
    Refunded,
    /// The processor's own doing: an authorization nobody captured in time lapsed.
    AuthorizationExpired,
    /// The card holder's bank took captured money back.
    Chargeback,
    /// A refund the processor could not pay out: the money is the shop's again.
    RefundReversed,
}

impl ProcessorEventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProcessorEventKind::Authorized => "authorized",
            ProcessorEventKind::Captured => "captured",
            ProcessorEventKind::Voided => "voided",
            ProcessorEventKind::Refunded => "refunded",
            ProcessorEventKind::AuthorizationExpired => "authorization_expired",
            ProcessorEventKind::Chargeback => "chargeback",
            ProcessorEventKind::RefundReversed => "refund_reversed",
        }
    }
}

/// A processor webhook: a stable id to deduplicate on (the same for every delivery of
/// one event), the payment's reference, and the processor's per-payment counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorEvent {
    pub external_id: String,
    /// The payment's reference, as `authorize` returned it.
    pub reference: String,
    pub kind: ProcessorEventKind,
    pub amount_cents: i64,
    /// For `refunded` and `refund_reversed`: the refund's reference.
    #[serde(default)]
    pub refund_reference: Option<String>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub sequence: u32,
}
