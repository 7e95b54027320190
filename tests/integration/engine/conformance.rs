//! The `Store` conformance suite, in the style of tower-sessions' store tests: one set
//! of async checks of the `Store`/`StoreTx` contract (the doc comments of
//! `order_core::store`), each given a freshly migrated, empty store as `Arc<dyn Store>`,
//! and `conformance!` to instantiate every check as a `#[tokio::test]` for one adapter.
//! A behaviour every adapter shares is checked here once, not in each adapter's tests.
//!
//! Everything adapter-specific lives behind [`RawSql`]: a statement runner and a counter
//! (built from `SqliteStore::pool()` here), the statements that lift the append-only
//! guards, so that a check can break stored data on purpose, and the database's words
//! for a CHECK constraint's refusal. The statements the checks issue themselves are
//! plain SQL that SQLite and PostgreSQL both accept. The PostgreSQL adapter
//! instantiates the same suite with its own store and hook:
//! `conformance!(postgres, make_pg_store(), pg_raw);`.
//!
//! The checks never read through the store while one of its transactions is open (an
//! in-memory SQLite store has a single connection), and never reuse a transaction after
//! a statement in it failed other than by a refusal (PostgreSQL aborts such a
//! transaction). The trait promises that a refusal (`StoreError::Invalid`) leaves the
//! transaction usable on every adapter, so many checks are refused several times in
//! one transaction, then write and commit in it; a refusal checked after a commit gets
//! a transaction of its own, rolled back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use order_core::order::Event::{Cancel, Confirm, Reopen};
use order_core::order::State::{Cancelled, Confirmed, Paid, Pending};
use order_core::order::{ActorKind, Event, Reason, State};
use order_core::store::{Movement, NewEntityTransition, NewMessage, NewPayment, NewTransition};
use order_core::{
    Attempt, EntityTransition, Finding, FulfillmentStatus, InboxMessage, ItemId, NewOrder, Order,
    OrderId, OrderItem, OrderQuery, Payment, PaymentId, PaymentStatus, Product, ProductId, Refund,
    Shipment, ShipmentId, SqliteStore, Store, StoreError, TransitionRecord,
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A raw SQL runner: the database's answer, or its error as text.
type Raw<T> =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<T, String>> + Send>> + Send + Sync>;

/// The adapter-specific hook: raw SQL against the store's database.
struct RawSql {
    /// Runs one statement; the database's error as text.
    exec: Raw<()>,
    /// Runs a query of one integer (a `COUNT(*)`), for what the store's API does not
    /// show: customers, notes, ledger rows.
    count: Raw<i64>,
    /// Statements that lift the database's refusal of UPDATE and DELETE on
    /// `order_transitions`, so that a check can break the audit trail.
    lift_audit_guard: &'static [&'static str],
    /// The same for `entity_transitions`, the trails of payments and shipments.
    lift_entity_guard: &'static [&'static str],
    /// The same for `inventory_movements`, the stock ledger.
    lift_ledger_guard: &'static [&'static str],
    /// The database's words when a CHECK constraint refuses a row.
    check_refusal: &'static str,
}

impl RawSql {
    async fn exec(&self, sql: impl Into<String>) -> Result<(), String> {
        (self.exec)(sql.into()).await
    }

    async fn count(&self, sql: &str) -> i64 {
        let found = (self.count)(sql.to_owned()).await;
        found.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql`, which the database must refuse in words that contain `words`.
    async fn refuses(&self, sql: &str, words: &str) {
        match self.exec(sql).await {
            Err(err) => assert!(
                err.contains(words),
                "`{sql}` refused, not saying `{words}`: {err}"
            ),
            Ok(()) => panic!("the database ran `{sql}`"),
        }
    }

    async fn lift_audit_guard(&self) {
        self.run_all(self.lift_audit_guard).await;
    }

    async fn lift_entity_guard(&self) {
        self.run_all(self.lift_entity_guard).await;
    }

    async fn lift_ledger_guard(&self) {
        self.run_all(self.lift_ledger_guard).await;
    }

    async fn run_all(&self, statements: &[&str]) {
        for sql in statements {
            self.exec(*sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

/// Instantiates every check for one adapter: `$make` is an async expression giving the
/// (unmigrated) store and whatever must live as long as it (a temporary folder, a
/// cluster); `$raw` builds the [`RawSql`] hook from the store.
macro_rules! conformance {
    ($adapter:ident, $make:expr, $raw:expr) => {
        conformance!(@checks $adapter, $make, $raw;
            migrate_is_idempotent,
            catalog_and_staff,
            create_order_prices_numbers_and_totals,
            a_split_moves_lines_into_a_child_order,
            queries_combine_every_filter,
            a_dropped_or_rolled_back_transaction_leaves_nothing,
            commit_persists_and_update_order_compares_and_sets,
            transition_reads_agree_with_the_calls_they_replace,
            reserve_is_conditional_and_never_oversells,
            move_stock_applies_each_kind_with_its_ledger_row,
            lock_products_returns_them_in_id_order,
            reserved_never_exceeds_on_hand,
            the_inventory_ledger_is_append_only,
            audit_trail_round_trips_in_seq_order,
            the_audit_trail_is_append_only,
            an_unknown_name_in_the_trail_is_corrupt_data,
            outbox_enqueues_dedupes_and_delivers,
            command_log_records_an_outcome_once,
            payments_round_trip,
            payments_are_found_by_processor_reference,
            refunds_round_trip_within_the_captured_amount,
            the_database_keeps_refunds_within_the_capture,
            shipments_round_trip,
            attempts_are_recorded_oldest_first,
            verify_is_clean_on_consistent_data,
            verify_reports_a_tampered_product_counter,
            verify_reports_a_broken_audit_sequence,
            verify_reports_tampered_states_counters_and_reservations,
            shipment_transitions_move_the_parcel_and_append_its_trail,
            shipment_transition_refusals_write_nothing_and_keep_the_tx,
            the_entity_trail_is_append_only,
            shipments_are_found_by_id_and_tracking_number,
            set_shipped_sets_a_lines_shipped_quantity,
            verify_reports_a_tampered_shipment_state,
            the_inbox_keeps_a_message_once,
            inbox_pending_is_oldest_first_and_limited,
            inbox_done_records_the_outcome,
        );
    };
    (@checks $adapter:ident, $make:expr, $raw:expr; $($check:ident),* $(,)?) => {
        mod $adapter {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let (store, _keep) = $make.await;
                    let raw: RawSql = ($raw)(&store);
                    let store: Arc<dyn Store> = Arc::new(store);
                    store.migrate().await.expect("the schema migrates");
                    super::$check(store, raw).await;
                }
            )*
        }
    };
}

conformance!(sqlite_memory, sqlite("sqlite::memory:", None), sqlite_raw);
conformance!(sqlite_file, sqlite_file(), sqlite_raw);

async fn sqlite(url: &str, dir: Option<TempDir>) -> (SqliteStore, Option<TempDir>) {
    let store = SqliteStore::connect(url).await.expect("the database opens");
    (store, dir)
}

async fn sqlite_file() -> (SqliteStore, Option<TempDir>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    sqlite(&url, Some(dir)).await
}

/// The statement runner and the counter of [`RawSql`] on a sqlx pool: the same code for
/// both databases, whose pools differ in type only.
macro_rules! pool_runners {
    ($pool:expr) => {{
        let (pool, counting) = ($pool.clone(), $pool.clone());
        let exec: Raw<()> = Arc::new(move |sql: String| {
            let pool = pool.clone();
            Box::pin(async move {
                let done = sqlx::query(&sql).execute(&pool).await;
                done.map(drop).map_err(|err| err.to_string())
            })
        });
        let count: Raw<i64> = Arc::new(move |sql: String| {
            let pool = counting.clone();
            Box::pin(async move {
                let found = sqlx::query_scalar(&sql).fetch_one(&pool).await;
                found.map_err(|err| err.to_string())
            })
        });
        (exec, count)
    }};
}

fn sqlite_raw(store: &SqliteStore) -> RawSql {
    let (exec, count) = pool_runners!(store.pool());
    RawSql {
        exec,
        count,
        lift_audit_guard: &[
            "DROP TRIGGER order_transitions_no_update",
            "DROP TRIGGER order_transitions_no_delete",
        ],
        lift_entity_guard: &[
            "DROP TRIGGER entity_transitions_no_update",
            "DROP TRIGGER entity_transitions_no_delete",
        ],
        lift_ledger_guard: &[
            "DROP TRIGGER inventory_movements_no_update",
            "DROP TRIGGER inventory_movements_no_delete",
        ],
        check_refusal: "CHECK constraint failed",
    }
}

// Helpers.

/// Awaits a call that must succeed.
macro_rules! ok {
    ($call:expr) => {
        $call
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", stringify!($call)))
    };
}

/// `refused!(store, tx => CALL, "why")`: runs CALL in a transaction `tx` of its own,
/// which must refuse it as `StoreError::Invalid`, then rolls back.
macro_rules! refused {
    ($store:expr, $tx:ident => $call:expr, $what:expr) => {{
        let mut $tx = ok!($store.begin());
        assert_invalid($call.await, $what);
        ok!($tx.rollback());
    }};
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert_invalid_saying(result, "", what);
}

/// `result` must be `StoreError::Invalid` in words that contain `words`.
#[track_caller]
fn assert_invalid_saying<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    words: &str,
    what: &str,
) {
    match result {
        Err(StoreError::Invalid(message)) if message.contains(words) => {}
        other => panic!("{what}: expected StoreError::Invalid saying `{words}`, got {other:?}"),
    }
}

/// Minutes after Monday 2 March 2026, 09:00 UTC.
fn at(minutes: i64) -> DateTime<Utc> {
    let start = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").expect("a valid time");
    start.with_timezone(&Utc) + TimeDelta::minutes(minutes)
}

/// `A` (2.50, 10 in stock) and `B` (10.00, 5 in stock).
async fn catalog(store: &dyn Store) -> (Product, Product) {
    let a = ok!(store.add_product("A", "Apple", 250, 10));
    (a, ok!(store.add_product("B", "Basket", 1_000, 5)))
}

/// A pending order, created at minute 0.
async fn new_order(store: &dyn Store, email: &str, items: &[(&str, i64)]) -> Order {
    let order = NewOrder::new(email, items);
    ok!(store.create_order(&order, Pending, at(0)))
}

async fn ann_order(store: &dyn Store) -> Order {
    new_order(store, "ann@example.com", &[("A", 1)]).await
}

fn line(i: &OrderItem) -> (i64, ProductId, &str, i64, i64) {
    (i.line_no, i.product, &i.sku, i.quantity, i.unit_price_cents)
}

fn payment(order: OrderId, amount_cents: i64, idempotency_key: &str) -> NewPayment<'_> {
    let at = at(1);
    NewPayment {
        order,
        amount_cents,
        idempotency_key,
        at,
    }
}

/// An outbox message of `kind`, sent at minute `n`.
fn message<'a>(
    id: OrderId,
    kind: &'a str,
    key: &'a str,
    payload: &'a Value,
    n: i64,
) -> NewMessage<'a> {
    let (dedupe_key, at) = (key, at(n));
    NewMessage {
        aggregate: id,
        kind,
        payload,
        dedupe_key,
        at,
    }
}

static NO_METADATA: Value = Value::Null;

/// An audit row by the system, at minute `seq`.
fn row(order: OrderId, seq: i64, event: Event, from: State, to: State) -> NewTransition<'static> {
    NewTransition {
        order,
        seq,
        event,
        from,
        to,
        actor_kind: ActorKind::System,
        actor_id: None,
        reason: None,
        note: None,
        is_override: false,
        machine_hash: "hash",
        idempotency_key: None,
        metadata: &NO_METADATA,
        at: at(seq),
    }
}

/// Moves `order` along `path` with one audit row per step, committed, each row at
/// minute `seq`.
async fn walk(store: &dyn Store, order: OrderId, path: &[(Event, State)]) {
    walk_timed(store, order, path, at).await;
}

/// Moves `order` one step at minute `minute`, committed; the order as stored after.
async fn step_at(store: &dyn Store, order: OrderId, step: (Event, State), minute: i64) -> Order {
    walk_timed(store, order, &[step], |_| at(minute)).await;
    ok!(store.order(order)).expect("the order exists")
}

/// [`walk`] with each row, and the order's write, at `when(seq)`.
async fn walk_timed(
    store: &dyn Store,
    order: OrderId,
    path: &[(Event, State)],
    when: impl Fn(i64) -> DateTime<Utc>,
) {
    let mut tx = ok!(store.begin());
    let mut current = ok!(tx.lock_order(order)).expect("the order exists");
    let mut seq = ok!(tx.last_seq(order));
    for &(event, to) in path {
        seq += 1;
        let mut audit = row(order, seq, event, current.state, to);
        audit.at = when(seq);
        ok!(tx.append_transition(&audit));
        current.state = to;
    }
    assert!(ok!(tx.update_order(&current, when(seq))));
    ok!(tx.commit());
}

async fn stock(store: &dyn Store, sku: &str) -> (i64, i64) {
    let product = ok!(store.product(sku)).expect("the product exists");
    (product.on_hand, product.reserved)
}

async fn assert_verified(store: &dyn Store) {
    assert_eq!(ok!(store.verify()), []);
}

fn checks(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.check.as_str()).collect()
}

// The checks.

// The checks, after the macros they use (macros are in scope from their definition on).
mod inbox;
mod inventory;
mod orders;
mod payments;
mod queries;
mod shipments;
mod trail;
mod verify;

use inbox::*;
use inventory::*;
use orders::*;
use payments::*;
use queries::*;
use shipments::*;
use trail::*;
use verify::*;

// The same suite on PostgreSQL: a throwaway cluster (or `DATABASE_URL`), a fresh
// database per check.
conformance!(postgres, postgres(), postgres_raw);

async fn postgres() -> (order_core::PostgresStore, ()) {
    let url = tests::postgres::database().await;
    let store = order_core::PostgresStore::connect(&url).await;
    (store.expect("the database opens"), ())
}

fn postgres_raw(store: &order_core::PostgresStore) -> RawSql {
    let (exec, count) = pool_runners!(store.pool());
    RawSql {
        exec,
        count,
        lift_audit_guard: &[
            "ALTER TABLE order_transitions DISABLE TRIGGER order_transitions_append_only",
        ],
        lift_entity_guard: &[
            "ALTER TABLE entity_transitions DISABLE TRIGGER entity_transitions_append_only",
        ],
        lift_ledger_guard: &[
            "ALTER TABLE inventory_movements DISABLE TRIGGER inventory_movements_append_only",
        ],
        check_refusal: "violates check constraint",
    }
}
