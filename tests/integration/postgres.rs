//! The PostgreSQL adapter against a real server (see `tests::postgres` for where it
//! comes from): what is PostgreSQL's own. What every adapter does (constraints,
//! triggers, reads, writes, refusals) is the `Store` conformance suite's, in
//! `engine/conformance`, run on this adapter as on SQLite. Here, by area: the schema in
//! PostgreSQL's types, its statement-level guards, sequences and indexes
//! (`postgres/schema.rs`); row locks and the waits they cause (`postgres/locks.rs`);
//! concurrent writers (`postgres/concurrency.rs`); refusals inside one transaction and
//! errors worth retrying (`postgres/refusals.rs`); the engine's pipeline under
//! concurrent commands (`postgres/engine.rs`).
//!
//! Each test gets a database of its own.

mod concurrency;
mod engine;
mod locks;
mod refusals;
mod schema;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use order_core::order::{ActorKind, Event, State};
use order_core::store::NewTransition;
use order_core::{NewOrder, Order, OrderId, PostgresStore, Store};

/// A moment `secs` seconds into 2026.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

/// A store on a new database, not migrated.
async fn connect() -> PostgresStore {
    let url = tests::postgres::database().await;
    PostgresStore::connect(&url)
        .await
        .expect("connect to the test database")
}

/// A migrated database with two products: `A` (10 in stock, 250 cents) and `B` (3 in
/// stock, 1000 cents).
async fn store() -> PostgresStore {
    let store = connect().await;
    store.migrate().await.expect("migrate");
    store
        .add_product("A", "Apple", 250, 10)
        .await
        .expect("add A");
    store
        .add_product("B", "Bike", 1000, 3)
        .await
        .expect("add B");
    store
}

async fn order(store: &PostgresStore, email: &str, items: &[(&str, i64)]) -> Order {
    store
        .create_order(&NewOrder::new(email, items), State::Pending, at(0))
        .await
        .expect("create order")
}

static NO_METADATA: serde_json::Value = serde_json::Value::Null;

/// The audit row of a pending order confirmed by the system at `secs`, numbered `seq`.
fn confirm_row(order: OrderId, seq: i64, secs: i64) -> NewTransition<'static> {
    NewTransition {
        order,
        seq,
        event: Event::Confirm,
        from: State::Pending,
        to: State::Confirmed,
        actor_kind: ActorKind::System,
        actor_id: None,
        reason: None,
        note: None,
        is_override: false,
        machine_hash: "hash",
        idempotency_key: None,
        metadata: &NO_METADATA,
        at: at(secs),
    }
}

/// The database's own words for a refused statement.
fn db_message(err: sqlx::Error) -> String {
    err.as_database_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

async fn exec(store: &PostgresStore, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .map(|done| done.rows_affected())
}

/// Waits until a session of this database waits for a lock that another one holds
/// (polling `pg_stat_activity`: an observed state, not a guess at how long it takes).
async fn until_someone_waits_for_a_lock(store: &PostgresStore) {
    for _ in 0..3_000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await
        .expect("read pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no transaction ever waited for a lock");
}
