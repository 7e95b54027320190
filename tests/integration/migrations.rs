//! Upgrades of databases that hold rows, on both adapters: a database is migrated up to
//! the migration under test, seeded with rows as the adapter wrote them then, migrated
//! the rest of the way by `Store::migrate`, and its rows, its schema and the schema's
//! rules are checked.
//!
//! Each scenario is written once, against the adapter's `Store` and a [`RawSql`] hook,
//! and `upgrades!` instantiates every scenario as a `#[tokio::test]` in the adapter's
//! module (`migrations/sqlite.rs`, `migrations/postgres.rs`), in the manner of the
//! `Store` conformance suite. The statements the scenarios issue are plain SQL that
//! both databases accept, with `$1`-style placeholders, which sqlx's SQLite driver
//! takes too. What only one database can tell, its catalogue and its own words for a
//! refused state, comes from the adapter's module.
//!
//! Migration 0003's upgrade is tested by each adapter on its own (`order-core`'s
//! `store/sqlite/tests_migrations.rs`, and `postgres.rs` here), because the two seed
//! their parcels in different ways and check different things after the upgrade.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, TimeZone, Utc};
use order_core::{OrderId, Store};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

type Exec = Box<dyn Fn(String, Vec<Param>) -> Boxed<Result<u64, String>> + Send + Sync>;

/// A value bound to one of a statement's placeholders. The scenarios name their values
/// with it so that the same statement can be bound on either database's pool.
#[derive(Clone, Debug)]
enum Param {
    Int(i64),
    Bool(bool),
    Text(Option<String>),
    Time(DateTime<Utc>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Param {
        Param::Int(value)
    }
}

impl From<bool> for Param {
    fn from(value: bool) -> Param {
        Param::Bool(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Param {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Param {
        Param::Text(Some(value))
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Param {
        Param::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Param {
        Param::Text(value)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Param {
        Param::Time(value)
    }
}

/// The adapter-specific hook: raw SQL against the store's database, and what only that
/// database can tell of its schema. `raw_sql!` builds it from the store's pool.
struct RawSql {
    /// Runs the migrations before `version` only, which leaves the schema as it was
    /// before that one.
    migrate_before: Box<dyn Fn(i64) -> Boxed<()> + Send + Sync>,
    /// Runs one statement: the number of rows it touched, or the database's own words
    /// for its refusal.
    exec: Exec,
    /// Reads every payment row, by id.
    payment_rows: Box<dyn Fn() -> Boxed<Vec<PaymentRow>> + Send + Sync>,
    /// Reads every refund row, by id.
    refund_rows: Box<dyn Fn() -> Boxed<Vec<RefundRow>> + Send + Sync>,
    /// Checks the foreign keys, indexes and triggers of `payments` and `refunds` after
    /// 0005 in the database's own catalogue, which the two databases do not share.
    schema_after_0005: Box<dyn Fn() -> Boxed<()> + Send + Sync>,
    /// Words that the database's refusal of a payment state outside the state CHECK
    /// constraint contains: each database words it differently.
    state_check: &'static str,
}

impl RawSql {
    async fn migrate_before(&self, version: i64) {
        (self.migrate_before)(version).await;
    }

    async fn exec(&self, sql: &str, params: Vec<Param>) -> Result<u64, String> {
        (self.exec)(sql.to_owned(), params).await
    }

    async fn payment_rows(&self) -> Vec<PaymentRow> {
        (self.payment_rows)().await
    }

    async fn refund_rows(&self) -> Vec<RefundRow> {
        (self.refund_rows)().await
    }

    async fn check_schema_after_0005(&self) {
        (self.schema_after_0005)().await;
    }
}

/// The columns of `payments`, in the order of [`PaymentRow`].
const PAYMENT_ROWS: &str = "SELECT id, order_id, attempt_no, state, amount_cents, \
     idempotency_key, processor_ref, failure_code, fraud_review, created_at, updated_at \
     FROM payments ORDER BY id";

/// The columns of `refunds`, in the order of [`RefundRow`].
const REFUND_ROWS: &str = "SELECT id, order_id, payment_id, amount_cents, state, reason, \
     idempotency_key, processor_ref, created_at \
     FROM refunds ORDER BY id";

/// Builds the [`RawSql`] of a store: `$pool` is its pool, `$migrator` its migrations
/// (`sqlx::migrate!` of the adapter's folder), `$schema_after_0005` an async function of
/// the pool that checks the catalogue, and `$state_check` the words of a refused state.
/// It is a macro rather than a function because the same code serves `SqlitePool` and
/// `PgPool`, whose statements, bound values and rows are of different types.
macro_rules! raw_sql {
    ($pool:expr, $migrator:expr, $schema_after_0005:path, $state_check:expr) => {{
        use $crate::migrations::{PAYMENT_ROWS, Param, REFUND_ROWS, RawSql, db_message};
        let pool = $pool.clone();
        RawSql {
            migrate_before: {
                let pool = pool.clone();
                Box::new(move |version: i64| {
                    let pool = pool.clone();
                    Box::pin(async move {
                        let mut before = $migrator;
                        before.migrations = before
                            .migrations
                            .iter()
                            .filter(|m| m.version < version)
                            .cloned()
                            .collect::<Vec<_>>()
                            .into();
                        before
                            .run(&pool)
                            .await
                            .unwrap_or_else(|err| panic!("migrate to {:04}: {err}", version - 1));
                        let applied: i64 =
                            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                                .fetch_one(&pool)
                                .await
                                .expect("applied migrations");
                        assert_eq!(applied, version - 1, "the schema stops before {version:04}");
                    })
                })
            },
            exec: {
                let pool = pool.clone();
                Box::new(move |sql: String, params: Vec<Param>| {
                    let pool = pool.clone();
                    Box::pin(async move {
                        let mut query = sqlx::query(&sql);
                        for param in params {
                            query = match param {
                                Param::Int(value) => query.bind(value),
                                Param::Bool(value) => query.bind(value),
                                Param::Text(value) => query.bind(value),
                                Param::Time(value) => query.bind(value),
                            };
                        }
                        let done = query.execute(&pool).await.map_err(db_message)?;
                        Ok(done.rows_affected())
                    })
                })
            },
            payment_rows: {
                let pool = pool.clone();
                Box::new(move || {
                    let pool = pool.clone();
                    Box::pin(async move {
                        sqlx::query_as(PAYMENT_ROWS)
                            .fetch_all(&pool)
                            .await
                            .expect("read payments")
                    })
                })
            },
            refund_rows: {
                let pool = pool.clone();
                Box::new(move || {
                    let pool = pool.clone();
                    Box::pin(async move {
                        sqlx::query_as(REFUND_ROWS)
                            .fetch_all(&pool)
                            .await
                            .expect("read refunds")
                    })
                })
            },
            schema_after_0005: Box::new(move || Box::pin($schema_after_0005(pool.clone()))),
            state_check: $state_check,
        }
    }};
}

/// Instantiates every scenario as a `#[tokio::test]` in the calling module: `$make` is
/// an async expression giving a store on a new, empty database, its [`RawSql`], and
/// whatever must live as long as the store (a temporary folder).
macro_rules! upgrades {
    ($make:expr) => {
        upgrades!(@scenarios $make;
            migration_0005_moves_old_payments_into_the_machine_states,
        );
    };
    (@scenarios $make:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let (store, raw, _keep) = $make.await;
                $crate::migrations::$scenario(&store, &raw).await;
            }
        )*
    };
}

// The adapters, after the macros they use (macros are in scope from their definition on).
mod postgres;
mod sqlite;

/// A moment `secs` seconds into 2026.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

/// The database's own words for a refused statement.
fn db_message(err: sqlx::Error) -> String {
    err.as_database_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

/// A payment as migrations 0001-0004 stored it: order (its number is
/// `ORD-00000<order>`), idempotency key, state, amount, failure code; and the state 0005
/// gives it.
type OldPayment = (
    i64,
    &'static str,
    &'static str,
    i64,
    Option<&'static str>,
    &'static str,
);

/// One payment in every old state. The captured ones are refunded in full, in part,
/// only by a refund the processor reversed, and not at all; `pay-undone` is a capture
/// undone after its transition failed (no refund row).
#[rustfmt::skip]
const OLD_PAYMENTS: [OldPayment; 10] = [
    (1, "pay-pending",    "pending",    1000, None,                      "initiated"),
    (1, "pay-authorized", "authorized", 1000, None,                      "authorized"),
    (1, "pay-declined",   "declined",   1000, Some("card_declined"),     "failed"),
    (1, "pay-failed",     "failed",     1000, Some("processor_error"),   "failed"),
    (1, "pay-voided",     "voided",     1000, None,                      "voided"),
    (2, "pay-full",       "captured",   1000, None,                      "refunded"),
    (2, "pay-part",       "captured",   2000, None,                      "partially_refunded"),
    (2, "pay-reversed",   "captured",   1000, None,                      "captured"),
    (2, "pay-captured",   "captured",   1000, None,                      "captured"),
    (3, "pay-undone",     "refunded",   1000, Some("transition_failed"), "refunded"),
];

/// Refunds as migrations 0001-0004 stored them: payment, idempotency key, amount,
/// state. Only succeeded ones count: were the reversed or the failed ones counted too,
/// `pay-part` (2000) would be refunded in full, and with the reversed, `pay-reversed`.
#[rustfmt::skip]
const OLD_REFUNDS: [(&str, &str, i64, &str); 8] = [
    ("pay-full",     "r-full-1",         600, "succeeded"),
    ("pay-full",     "r-full-2",         400, "succeeded"),
    ("pay-full",     "r-full-failed",    250, "failed"),
    ("pay-part",     "r-part-1",         300, "succeeded"),
    ("pay-part",     "r-part-reversed", 1700, "reversed"),
    ("pay-part",     "r-part-failed",   1700, "failed"),
    ("pay-part",     "r-part-failed-2",  200, "failed"),
    ("pay-reversed", "r-reversed",      1000, "reversed"),
];

/// The orders of those payments: number, and the payment status the old rollup gave
/// each. They are `pending` without an audit trail, which `verify` accepts.
const OLD_ORDERS: [(&str, &str); 3] = [
    ("ORD-000001", "voided"),
    ("ORD-000002", "partially_refunded"),
    ("ORD-000003", "refunded"),
];

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
struct PaymentRow {
    id: i64,
    order_id: i64,
    attempt_no: i64,
    state: String,
    amount_cents: i64,
    idempotency_key: String,
    processor_ref: Option<String>,
    failure_code: Option<String>,
    fraud_review: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
struct RefundRow {
    id: i64,
    order_id: i64,
    payment_id: i64,
    amount_cents: i64,
    state: String,
    reason: Option<String>,
    idempotency_key: String,
    processor_ref: Option<String>,
    created_at: DateTime<Utc>,
}

/// Writes `OLD_ORDERS`, `OLD_PAYMENTS` and `OLD_REFUNDS` under the 0004 schema. Each
/// payment was last updated an hour after the one before it, so each has an
/// `updated_at` of its own; the pending one has no processor reference, nor have the
/// failed refunds; one payment asked for a fraud review, so that the flag is seen kept.
async fn seed_old_payments(raw: &RawSql) {
    raw.exec(
        "INSERT INTO customers (email, created_at) VALUES ('ann@example.com', $1)",
        vec![at(0).into()],
    )
    .await
    .expect("a customer");
    for (number, payment_status) in OLD_ORDERS {
        raw.exec(
            "INSERT INTO orders (number, customer_id, state, currency, total_cents, \
                 payment_status, fulfillment_status, created_at, updated_at) \
             VALUES ($1, (SELECT id FROM customers WHERE email = 'ann@example.com'), \
                 'pending', 'EUR', 1000, $2, 'unfulfilled', $3, $3)",
            vec![number.into(), payment_status.into(), at(0).into()],
        )
        .await
        .unwrap_or_else(|err| panic!("order {number}: {err}"));
    }
    for (n, (order, key, state, amount, failure_code, _)) in (1_i64..).zip(OLD_PAYMENTS) {
        raw.exec(
            "INSERT INTO payments (order_id, attempt_no, state, amount_cents, idempotency_key, \
                 processor_ref, failure_code, fraud_review, created_at, updated_at) \
             SELECT o.id, (SELECT COUNT(*) + 1 FROM payments p WHERE p.order_id = o.id), \
                 $1, $2, $3, $4, $5, $6, $7, $8 \
             FROM orders o WHERE o.number = $9",
            vec![
                state.into(),
                amount.into(),
                key.into(),
                (state != "pending").then(|| format!("ch_{key}")).into(),
                failure_code.into(),
                (key == "pay-authorized").into(),
                at(60).into(),
                at(3600 * n).into(),
                format!("ORD-00000{order}").into(),
            ],
        )
        .await
        .unwrap_or_else(|err| panic!("payment {key}: {err}"));
    }
    for (n, (payment, key, amount, state)) in (1_i64..).zip(OLD_REFUNDS) {
        raw.exec(
            "INSERT INTO refunds (order_id, payment_id, amount_cents, state, reason, \
                 idempotency_key, processor_ref, created_at) \
             SELECT order_id, id, $1, $2, $3, $4, $5, $6 FROM payments \
             WHERE idempotency_key = $7",
            vec![
                amount.into(),
                state.into(),
                (state != "reversed").then_some("customer_request").into(),
                key.into(),
                (state != "failed").then(|| format!("re_{key}")).into(),
                at(100_000 + n).into(),
                payment.into(),
            ],
        )
        .await
        .unwrap_or_else(|err| panic!("refund {key}: {err}"));
    }
}

/// Writes a succeeded refund of `amount` of the payment `payment`; the database's
/// refusal if it refuses.
async fn refund(raw: &RawSql, payment: &str, amount: i64, key: &str) -> Result<(), String> {
    let done = raw
        .exec(
            "INSERT INTO refunds (order_id, payment_id, amount_cents, state, reason, \
                 idempotency_key, processor_ref, created_at) \
             SELECT order_id, id, $1, 'succeeded', 'goodwill', $2, NULL, $3 \
             FROM payments WHERE idempotency_key = $4",
            vec![
                amount.into(),
                key.into(),
                at(200_000).into(),
                payment.into(),
            ],
        )
        .await?;
    assert_eq!(done, 1, "a payment `{payment}`");
    Ok(())
}

/// Turns the refund `key` into a succeeded one; the database's refusal if it refuses.
async fn succeed(raw: &RawSql, key: &str) -> Result<(), String> {
    let done = raw
        .exec(
            "UPDATE refunds SET state = 'succeeded' WHERE idempotency_key = $1",
            vec![key.into()],
        )
        .await?;
    assert_eq!(done, 1, "a refund `{key}`");
    Ok(())
}

/// Fails unless `written` was refused by the refunds-within-captured trigger.
#[track_caller]
fn assert_exceeds(written: Result<(), String>, what: &str) {
    match written {
        Err(message) if message.contains("refunds exceed the captured amount") => {}
        other => panic!("{what}: expected the trigger to refuse it, got {other:?}"),
    }
}

async fn migration_0005_moves_old_payments_into_the_machine_states(
    store: &dyn Store,
    raw: &RawSql,
) {
    raw.migrate_before(5).await;
    seed_old_payments(raw).await;
    let old_payments = raw.payment_rows().await;
    let old_refunds = raw.refund_rows().await;
    assert_eq!((old_payments.len(), old_refunds.len()), (10, 8));
    store.migrate().await.expect("migrate to 0005");

    // Each payment is in its new state, with its failure code; nothing else changed.
    let payments = raw.payment_rows().await;
    let states: Vec<(&str, &str, Option<&str>)> = payments
        .iter()
        .map(|p| {
            (
                p.idempotency_key.as_str(),
                p.state.as_str(),
                p.failure_code.as_deref(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str, Option<&str>)> = OLD_PAYMENTS
        .iter()
        .map(|&(_, key, _, _, failure_code, migrated)| (key, migrated, failure_code))
        .collect();
    assert_eq!(states, expected);
    let kept: Vec<PaymentRow> = old_payments
        .iter()
        .zip(OLD_PAYMENTS)
        .map(|(row, (.., migrated))| PaymentRow {
            state: migrated.to_owned(),
            ..row.clone()
        })
        .collect();
    assert_eq!(payments, kept);
    assert!(payments.iter().any(|p| p.fraud_review));

    // The old refunds are kept with their ids; the undone capture has a refund now, of
    // its amount, made when the payment was last updated; no other payment gained one.
    let refunds = raw.refund_rows().await;
    assert_eq!(refunds[..old_refunds.len()], old_refunds[..]);
    let undone = &payments[9];
    assert_eq!(
        (undone.idempotency_key.as_str(), undone.updated_at),
        ("pay-undone", at(3600 * 10))
    );
    assert_eq!(
        refunds[old_refunds.len()..],
        [RefundRow {
            id: old_refunds[7].id + 1,
            order_id: undone.order_id,
            payment_id: undone.id,
            amount_cents: 1000,
            state: "succeeded".to_owned(),
            reason: Some("processor_error".to_owned()),
            idempotency_key: format!("migrated-undo-{}", undone.id),
            processor_ref: None,
            created_at: undone.updated_at,
        }]
    );
    // The adapter reads them.
    let order = OrderId(undone.order_id);
    let read = store.refunds(order).await.expect("refunds");
    assert_eq!(
        read.iter()
            .map(|r| (r.payment.0, r.amount_cents, r.idempotency_key.clone()))
            .collect::<Vec<_>>(),
        [(undone.id, 1000, format!("migrated-undo-{}", undone.id))]
    );
    let read = store.payments(order).await.expect("payments");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].state, "refunded");

    // The schema around them is described by each database's own catalogue, so the
    // adapter checks it.
    raw.check_schema_after_0005().await;
    // No payment has an audit trail yet, so verify's payment check has nothing to
    // compare; the rest of the seeded data is consistent.
    assert_eq!(store.verify().await.expect("verify"), []);

    // The old states are refused now.
    let err = raw
        .exec(
            "UPDATE payments SET state = 'pending' WHERE idempotency_key = $1",
            vec!["pay-pending".into()],
        )
        .await
        .expect_err("`pending` is no longer a payment state");
    assert!(err.contains(raw.state_check), "{err}");

    // Refunds still never exceed what was captured, and a payment refunded in part
    // still holds its capture: 2000, of which 300 is refunded.
    let part = "pay-part";
    assert_exceeds(refund(raw, part, 1701, "new-1").await, "1701 more");
    refund(raw, part, 1000, "new-2")
        .await
        .expect("1000 of the 1700 left");
    assert_exceeds(succeed(raw, "r-part-failed").await, "1700 of the 700 left");
    succeed(raw, "r-part-failed-2")
        .await
        .expect("200 of the 700 left");
    refund(raw, part, 500, "new-3")
        .await
        .expect("exactly the 500 left");
    assert_exceeds(refund(raw, part, 1, "new-4").await, "1 more");
    // The undone capture is refunded in full by its new row, the one refunded in full
    // before too; a captured one can be refunded in full.
    assert_exceeds(refund(raw, "pay-undone", 1, "new-5").await, "undone");
    assert_exceeds(succeed(raw, "r-full-failed").await, "refunded in full");
    refund(raw, "pay-captured", 1000, "new-6")
        .await
        .expect("the whole capture");
    // Nothing is refunded of money that was never captured.
    for payment in [
        "pay-pending",
        "pay-authorized",
        "pay-declined",
        "pay-voided",
    ] {
        assert_exceeds(
            refund(raw, payment, 1, &format!("new-{payment}")).await,
            payment,
        );
    }
}
