//! The transition engine: `fire` runs one command through the nine steps of the
//! pipeline; operations change an order within its state; `bulk` fires one event at
//! many orders.

mod batch;
mod check;
mod fire;
pub mod inbox;
pub mod machine;
mod ops;
mod payment_rules;
pub mod payments;
pub mod processor_inbox;
mod reconcile;
pub(crate) mod rollup;
mod rules;
mod shipment_rules;
pub mod shipments;
mod undo;

use std::sync::Arc;

use chrono::TimeDelta;

use crate::auth::{Authorizer, StaffDirectory};
use crate::carrier::Carrier;
use crate::clock::{Clock, SystemClock};
use crate::payment::{PaymentProcessor, Simulator};
use crate::store::Store;

pub use ops::{PaymentAttempt, ShipmentLine};
pub use payments::{PaymentCommand, PaymentFireError, PaymentOutcome};
pub use reconcile::Reconciled;
pub use rules::{Effect, Step};
pub use shipments::{ShipmentCommand, ShipmentError, ShipmentOutcome};

/// The engine's policies.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Declined or failed payment attempts after which the system may cancel an order
    /// (`payment_attempts_exhausted`).
    pub max_payment_attempts: i64,
    /// How long after delivery a return may be authorized (`within_return_window`).
    pub return_window: TimeDelta,
    /// How many times a processor call that timed out is retried with the same
    /// idempotency key before the step fails.
    pub processor_retries: u32,
    /// How many times a transition the database aborted because of a concurrent one is
    /// run again before the error is reported.
    pub conflict_retries: u32,
    /// Failed delivery attempts after which a parcel may go back to the sender
    /// (`attempts_exhausted` in shipment.fsm).
    pub max_delivery_attempts: u32,
    /// How long a parcel's tracking must be silent before it may be reported lost
    /// (`tracking_silent_for_window`).
    pub tracking_silence: TimeDelta,
    /// How long a carrier event waits in the inbox for a missing earlier one before it
    /// is applied out of the carrier's order.
    pub inbox_patience: TimeDelta,
    /// How long a processor webhook naming a payment the shop does not know waits for
    /// it: an authorization whose answer a crash lost is recorded by reconciliation.
    pub unmatched_webhook_patience: TimeDelta,
    /// How long an authorization can be captured after it was granted
    /// (`authorization_valid` in payment.fsm); card networks let holds lapse after
    /// about a week.
    pub authorization_lifetime: TimeDelta,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            max_payment_attempts: 3,
            return_window: TimeDelta::days(30),
            processor_retries: 2,
            conflict_retries: 5,
            max_delivery_attempts: 3,
            tracking_silence: TimeDelta::days(3),
            inbox_patience: TimeDelta::hours(1),
            unmatched_webhook_patience: TimeDelta::days(1),
            authorization_lifetime: TimeDelta::days(7),
        }
    }
}

/// The order engine: a store, the outside services, a clock and the policies.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) payments: Arc<dyn PaymentProcessor>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    /// The carrier that makes and voids labels; without one, labels are made by hand
    /// and tracking numbers given to `add_shipment`.
    pub(crate) carrier: Option<Arc<dyn Carrier>>,
    /// Called at the points where a crash leaves the books in doubt; see
    /// [`CrashPoint`].
    pub(crate) crash_points: Option<CrashHook>,
}

/// The hook of [`Engine::with_crash_points`].
#[derive(Clone)]
pub(crate) struct CrashHook(Arc<dyn Fn(CrashPoint) + Send + Sync>);

impl std::fmt::Debug for CrashHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashHook")
    }
}

/// Where a process that dies leaves the shop's books and the processor's apart, until
/// [`Engine::reconcile_payments`] brings them together again. Tests and `orderctl`
/// (for its own crash tests) stop the process at these points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// The processor answered an authorization whose payment row says `pending`.
    Authorized,
    /// The processor captured, and the transition that records it has not committed.
    Captured,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 2] = [CrashPoint::Authorized, CrashPoint::Captured];

    pub fn as_str(self) -> &'static str {
        match self {
            CrashPoint::Authorized => "authorized",
            CrashPoint::Captured => "captured",
        }
    }
}

impl Engine {
    /// An engine on `store` with the system clock, staff roles from the store's staff
    /// table, and a payment simulator that never fails.
    pub fn new(store: Arc<dyn Store>) -> Engine {
        Engine {
            authorizer: Arc::new(StaffDirectory::new(store.clone())),
            store,
            payments: Arc::new(Simulator::default()),
            clock: Arc::new(SystemClock),
            config: EngineConfig::default(),
            carrier: None,
            crash_points: None,
        }
    }

    /// Calls `hook` at every [`CrashPoint`] the engine passes.
    pub fn with_crash_points(mut self, hook: Arc<dyn Fn(CrashPoint) + Send + Sync>) -> Engine {
        self.crash_points = Some(CrashHook(hook));
        self
    }

    pub(crate) fn crash_point(&self, point: CrashPoint) {
        if let Some(CrashHook(hook)) = &self.crash_points {
            hook(point);
        }
    }

    pub fn with_carrier(mut self, carrier: Arc<dyn Carrier>) -> Engine {
        self.carrier = Some(carrier);
        self
    }

    pub fn with_payments(mut self, payments: Arc<dyn PaymentProcessor>) -> Engine {
        self.payments = payments;
        self
    }

    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Engine {
        self.authorizer = authorizer;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.clock = clock;
        self
    }

    pub fn with_config(mut self, config: EngineConfig) -> Engine {
        self.config = config;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn payments(&self) -> &Arc<dyn PaymentProcessor> {
        &self.payments
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}
