//! The order domain and its transition engine: guards and actions of the order
//! machine, the transition pipeline, storage adapters, migrations, queries, bulk
//! operations, the outbox and the audit trail.
//!
//! **Invariant:** the order machine reaches this crate only through the `machine!`
//! macro; `statemachine-dsl` is not a run-time dependency.

pub mod auth;
pub mod bulk;
pub mod carrier;
pub mod clock;
pub mod engine;
pub mod error;
pub mod outbox;
pub mod payment;
pub mod query;
pub mod store;
pub mod types;
pub mod verify;

/// The order machine of `machines/order.fsm`, compiled at build time.
pub mod order {
    statemachine::machine!("../machines/order.fsm");
}

/// One shipment's carrier lifecycle, `machines/shipment.fsm`: each parcel runs it
/// through the engine beside its order, with its own audit trail.
pub mod shipment {
    statemachine::machine!("../machines/shipment.fsm");
}

pub use engine::{Engine, EngineConfig};
pub use error::{FireError, OperationError, Step, StoreError};
pub use query::OrderQuery;
pub use store::postgres::PostgresStore;
pub use store::sqlite::SqliteStore;
pub use store::{Store, StoreTx};
pub use types::*;
pub use verify::Finding;
