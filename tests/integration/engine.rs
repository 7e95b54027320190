//! The order engine on SQLite: the machine's rules enforced through the whole pipeline.

mod concurrency;
mod conformance;
mod failures;
mod faulty;
mod harness;
mod lifecycle;
mod model;
mod operations;
mod queries;
mod table;
mod trail;
