//! Upgrades of databases that hold rows: a database is migrated up to the migration
//! under test, seeded with rows as the adapter wrote them then, migrated the rest of the
//! way by `Store::migrate`, and its rows, its schema and the schema's rules are checked.
//! The same scenarios as `order-core`'s `store/sqlite/tests_migrations.rs`.

use chrono::{DateTime, Utc};
use order_core::{OrderId, PostgresStore, Store};

use super::{at, connect, db_message};

/// Runs the migrations before `version` only: the schema as it was before that one.
async fn migrate_before(store: &PostgresStore, version: i64) {
    let mut before = sqlx::migrate!("../order-core/migrations/postgres");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before
        .run(store.pool())
        .await
        .unwrap_or_else(|err| panic!("migrate to {:04}: {err}", version - 1));
    let applied: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .expect("applied migrations");
    assert_eq!(applied, version - 1, "the schema stops before {version:04}");
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

async fn payment_rows(store: &PostgresStore) -> Vec<PaymentRow> {
    sqlx::query_as(
        "SELECT id, order_id, attempt_no, state, amount_cents, idempotency_key, \
             processor_ref, failure_code, fraud_review, created_at, updated_at \
         FROM payments ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("read payments")
}

async fn refund_rows(store: &PostgresStore) -> Vec<RefundRow> {
    sqlx::query_as(
        "SELECT id, order_id, payment_id, amount_cents, state, reason, idempotency_key, \
             processor_ref, created_at \
         FROM refunds ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("read refunds")
}

/// Writes `OLD_ORDERS`, `OLD_PAYMENTS` and `OLD_REFUNDS` under the 0004 schema. Each
/// payment was last updated an hour after the one before it, so each has an
/// `updated_at` of its own; the pending one has no processor reference, nor have the
/// failed refunds; one payment asked for a fraud review, so that the flag is seen kept.
async fn seed_old_payments(store: &PostgresStore) {
    let pool = store.pool();
    sqlx::query("INSERT INTO customers (email, created_at) VALUES ('ann@example.com', $1)")
        .bind(at(0))
        .execute(pool)
        .await
        .expect("a customer");
    for (number, payment_status) in OLD_ORDERS {
        sqlx::query(
            "INSERT INTO orders (number, customer_id, state, currency, total_cents, \
                 payment_status, fulfillment_status, created_at, updated_at) \
             VALUES ($1, (SELECT id FROM customers WHERE email = 'ann@example.com'), \
                 'pending', 'EUR', 1000, $2, 'unfulfilled', $3, $3)",
        )
        .bind(number)
        .bind(payment_status)
        .bind(at(0))
        .execute(pool)
        .await
        .unwrap_or_else(|err| panic!("order {number}: {err}"));
    }
    for (n, (order, key, state, amount, failure_code, _)) in (1_i64..).zip(OLD_PAYMENTS) {
        sqlx::query(
            "INSERT INTO payments (order_id, attempt_no, state, amount_cents, idempotency_key, \
                 processor_ref, failure_code, fraud_review, created_at, updated_at) \
             SELECT o.id, (SELECT COUNT(*) + 1 FROM payments p WHERE p.order_id = o.id), \
                 $1, $2, $3, $4, $5, $6, $7, $8 \
             FROM orders o WHERE o.number = $9",
        )
        .bind(state)
        .bind(amount)
        .bind(key)
        .bind((state != "pending").then(|| format!("ch_{key}")))
        .bind(failure_code)
        .bind(key == "pay-authorized")
        .bind(at(60))
        .bind(at(3600 * n))
        .bind(format!("ORD-00000{order}"))
        .execute(pool)
        .await
        .unwrap_or_else(|err| panic!("payment {key}: {err}"));
    }
    for (n, (payment, key, amount, state)) in (1_i64..).zip(OLD_REFUNDS) {
        sqlx::query(
            "INSERT INTO refunds (order_id, payment_id, amount_cents, state, reason, \
                 idempotency_key, processor_ref, created_at) \
             SELECT order_id, id, $1, $2, $3, $4, $5, $6 FROM payments \
             WHERE idempotency_key = $7",
        )
        .bind(amount)
        .bind(state)
        .bind((state != "reversed").then_some("customer_request"))
        .bind(key)
        .bind((state != "failed").then(|| format!("re_{key}")))
        .bind(at(100_000 + n))
        .bind(payment)
        .execute(pool)
        .await
        .unwrap_or_else(|err| panic!("refund {key}: {err}"));
    }
}

/// Writes a succeeded refund of `amount` of the payment `payment`; the database's
/// refusal if it refuses.
async fn refund(
    store: &PostgresStore,
    payment: &str,
    amount: i64,
    key: &str,
) -> Result<(), String> {
    let done = sqlx::query(
        "INSERT INTO refunds (order_id, payment_id, amount_cents, state, reason, \
             idempotency_key, processor_ref, created_at) \
         SELECT order_id, id, $1, 'succeeded', 'goodwill', $2, NULL, $3 \
         FROM payments WHERE idempotency_key = $4",
    )
    .bind(amount)
    .bind(key)
    .bind(at(200_000))
    .bind(payment)
    .execute(store.pool())
    .await
    .map_err(db_message)?;
    assert_eq!(done.rows_affected(), 1, "a payment `{payment}`");
    Ok(())
}

/// Turns the refund `key` into a succeeded one; the database's refusal if it refuses.
async fn succeed(store: &PostgresStore, key: &str) -> Result<(), String> {
    let done = sqlx::query("UPDATE refunds SET state = 'succeeded' WHERE idempotency_key = $1")
        .bind(key)
        .execute(store.pool())
        .await
        .map_err(db_message)?;
    assert_eq!(done.rows_affected(), 1, "a refund `{key}`");
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

#[tokio::test]
async fn migration_0005_moves_old_payments_into_the_machine_states() {
    let store = connect().await;
    migrate_before(&store, 5).await;
    seed_old_payments(&store).await;
    let old_payments = payment_rows(&store).await;
    let old_refunds = refund_rows(&store).await;
    assert_eq!((old_payments.len(), old_refunds.len()), (10, 8));
    store.migrate().await.expect("migrate to 0005");

    // Each payment is in its new state, with its failure code; nothing else changed.
    let payments = payment_rows(&store).await;
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
    let refunds = refund_rows(&store).await;
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

    // The schema around them: the foreign keys, valid, point where they did; the
    // indexes and the triggers are there.
    let targets: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::TEXT, c.confrelid::regclass::TEXT, a.attname::TEXT, \
             c.convalidated \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND c.conrelid IN ('payments'::regclass, 'refunds'::regclass) \
         ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .expect("foreign keys");
    let targets: Vec<(&str, &str, &str, bool)> = targets
        .iter()
        .map(|(t, r, c, valid)| (t.as_str(), r.as_str(), c.as_str(), *valid))
        .collect();
    assert_eq!(
        targets,
        [
            ("payments", "orders", "order_id", true),
            ("refunds", "orders", "order_id", true),
            ("refunds", "payments", "payment_id", true)
        ]
    );
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT tablename::TEXT, indexname::TEXT FROM pg_indexes \
         WHERE schemaname = 'public' AND tablename IN ('payments', 'refunds') \
         ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    let indexes: Vec<(&str, &str)> = indexes
        .iter()
        .map(|(t, i)| (t.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        indexes,
        [
            ("payments", "payments_idempotency_key_key"),
            ("payments", "payments_order_id_attempt_no_key"),
            ("payments", "payments_pkey"),
            ("payments", "payments_processor_ref"),
            ("refunds", "refunds_idempotency_key_key"),
            ("refunds", "refunds_order"),
            ("refunds", "refunds_payment"),
            ("refunds", "refunds_pkey"),
        ]
    );
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.tgrelid::regclass::TEXT, t.tgname::TEXT, p.proname::TEXT \
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
         WHERE t.tgrelid IN ('payments'::regclass, 'refunds'::regclass) \
           AND NOT t.tgisinternal \
         ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .expect("triggers");
    let triggers: Vec<(&str, &str, &str)> = triggers
        .iter()
        .map(|(t, n, f)| (t.as_str(), n.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        triggers,
        [
            (
                "refunds",
                "refunds_within_captured_insert",
                "refunds_within_captured"
            ),
            (
                "refunds",
                "refunds_within_captured_update",
                "refunds_within_captured"
            ),
        ]
    );
    // No payment has an audit trail yet, so verify's payment check has nothing to
    // compare; the rest of the seeded data is consistent.
    assert_eq!(store.verify().await.expect("verify"), []);

    // The old states are refused now.
    let err = sqlx::query("UPDATE payments SET state = 'pending' WHERE idempotency_key = $1")
        .bind("pay-pending")
        .execute(store.pool())
        .await
        .expect_err("`pending` is no longer a payment state");
    assert!(db_message(err).contains("payments_state_check"));

    // Refunds still never exceed what was captured, and a payment refunded in part
    // still holds its capture: 2000, of which 300 is refunded.
    let part = "pay-part";
    assert_exceeds(refund(&store, part, 1701, "new-1").await, "1701 more");
    refund(&store, part, 1000, "new-2")
        .await
        .expect("1000 of the 1700 left");
    assert_exceeds(
        succeed(&store, "r-part-failed").await,
        "1700 of the 700 left",
    );
    succeed(&store, "r-part-failed-2")
        .await
        .expect("200 of the 700 left");
    refund(&store, part, 500, "new-3")
        .await
        .expect("exactly the 500 left");
    assert_exceeds(refund(&store, part, 1, "new-4").await, "1 more");
    // The undone capture is refunded in full by its new row, the one refunded in full
    // before too; a captured one can be refunded in full.
    assert_exceeds(refund(&store, "pay-undone", 1, "new-5").await, "undone");
    assert_exceeds(succeed(&store, "r-full-failed").await, "refunded in full");
    refund(&store, "pay-captured", 1000, "new-6")
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
            refund(&store, payment, 1, &format!("new-{payment}")).await,
            payment,
        );
    }
}
