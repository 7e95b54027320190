//! The transition engine: `fire` runs one command through the nine steps of the
//! pipeline; operations change an order within its state; `bulk` fires one event at
//! many orders.

mod batch;
mod check;
mod fire;
mod ops;
pub(crate) mod rollup;
mod rules;
mod undo;

use std::sync::Arc;

use chrono::TimeDelta;

use crate::auth::{Authorizer, StaffDirectory};
use crate::clock::{Clock, SystemClock};
use crate::payment::{PaymentProcessor, Simulator};
use crate::store::Store;

pub use ops::{PaymentAttempt, ShipmentLine};
pub use rules::{Effect, Step};

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
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            max_payment_attempts: 3,
            return_window: TimeDelta::days(30),
            processor_retries: 2,
            conflict_retries: 5,
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
        }
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
