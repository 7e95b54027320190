//! One order's transition, statement by statement: the command log, the order row's
//! compare-and-set, its audit row, its outbox row, and the reads they need. Each write
//! checks its rules inside its statement and answers "no row written" rather than
//! raising, so a refusal leaves the transaction usable (see `tx.rs`).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use crate::error::StoreError;
use crate::order::State;
use crate::store::{NewMessage, NewTransition, Result, statements};
use crate::types::{Order, OrderId};

use super::rows::refused;

/// The stored outcome of a command with this key, if one committed.
pub(super) async fn command_outcome(conn: &mut PgConnection, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(statements::COMMAND_OUTCOME)
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

/// Stores a command's outcome under its key; refused (not raised) when the key is taken
/// or the order does not exist.
pub(super) async fn record_command(
    conn: &mut PgConnection,
    key: &str,
    order: OrderId,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    // A key already taken (by a transaction that committed meanwhile, too) is a
    // refusal, not an aborted transaction.
    let done = sqlx::query(
        "INSERT INTO command_log (idempotency_key, order_id, outcome, created_at) \
         SELECT $1, o.id, $3, $4 FROM orders o WHERE o.id = $2 \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(key)
    .bind(order.0)
    .bind(outcome)
    .bind(at)
    .execute(conn)
    .await
    .map_err(|err| refused(err, || format!("cannot record command `{key}`")))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "cannot record command `{key}`: the key is taken or order {order} does not exist"
        )));
    }
    Ok(())
}

/// The order row's compare-and-set: false when its version moved.
pub(super) async fn update_order(
    conn: &mut PgConnection,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<bool> {
    // The only column rule a caller can break (the rollups are enums): checked here,
    // so the statement itself is never refused.
    if order.total_cents < 0 {
        return Err(StoreError::Invalid(format!(
            "cannot write order {}: the total cannot be negative, got {}",
            order.id, order.total_cents
        )));
    }
    let done = statements::update_order!(order, at)
        .execute(conn)
        .await
        .map_err(|err| refused(err, || format!("cannot write order {}", order.id)))?;
    Ok(done.rows_affected() == 1)
}

/// The highest audit sequence number of the order, 0 when it has none.
pub(super) async fn last_seq(conn: &mut PgConnection, id: OrderId) -> Result<i64> {
    Ok(sqlx::query_scalar(statements::LAST_SEQ)
        .bind(id.0)
        .fetch_one(conn)
        .await?)
}

/// Appends an order's audit row; refused (not raised) unless `row.seq` follows the
/// order's last one.
pub(super) async fn append_transition(
    conn: &mut PgConnection,
    row: &NewTransition<'_>,
) -> Result<()> {
    // The sequence rule in the statement (the trigger checks it again), so that a
    // wrong number is a refusal rather than an aborted transaction.
    let done = sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
             actor_kind, actor_id, reason, note, is_override, machine_hash, \
             idempotency_key, metadata, created_at) \
         SELECT o.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
         FROM orders o \
         WHERE o.id = $1 AND $2 = (SELECT COALESCE(MAX(t.seq), 0) + 1 \
                                  FROM order_transitions t WHERE t.order_id = $1) \
         ON CONFLICT (order_id, seq) DO NOTHING",
    )
    .bind(row.order.0)
    .bind(row.seq)
    .bind(row.event.as_str())
    .bind(row.from.as_str())
    .bind(row.to.as_str())
    .bind(row.actor_kind.as_str())
    .bind(row.actor_id)
    .bind(row.reason.map(|r| r.as_str()))
    .bind(row.note)
    .bind(row.is_override)
    .bind(row.machine_hash)
    .bind(row.idempotency_key)
    .bind(row.metadata)
    .bind(row.at)
    .execute(conn)
    .await
    .map_err(|err| {
        refused(err, || {
            format!("cannot append audit row {} of order {}", row.seq, row.order)
        })
    })?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "cannot append audit row {} of order {}: order_transitions seq must follow \
             the order's last one (or the order does not exist)",
            row.seq, row.order
        )));
    }
    Ok(())
}

/// Adds an outbox row; refused (not raised) when the dedupe key is taken or the order
/// does not exist.
pub(super) async fn enqueue(conn: &mut PgConnection, message: &NewMessage<'_>) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO outbox (aggregate_id, kind, payload, dedupe_key, created_at, \
             delivered_at, attempts, next_attempt_at, last_error) \
         SELECT o.id, $2, $3, $4, $5, NULL, 0, $5, NULL FROM orders o WHERE o.id = $1 \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(message.aggregate.0)
    .bind(message.kind)
    .bind(message.payload)
    .bind(message.dedupe_key)
    .bind(message.at)
    .execute(conn)
    .await
    .map_err(|err| refused(err, || format!("cannot enqueue `{}`", message.dedupe_key)))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "cannot enqueue `{}`: the dedupe key is taken or order {} does not exist",
            message.dedupe_key, message.aggregate
        )));
    }
    Ok(())
}

/// When the order last entered `state` (from its audit trail).
pub(super) async fn entered_at(
    conn: &mut PgConnection,
    id: OrderId,
    state: State,
) -> Result<Option<DateTime<Utc>>> {
    // The last entry by a transition; else the creation, if the order was created in
    // `state` (the first audit row leaves it, or there is none yet).
    Ok(sqlx::query_scalar(
        "SELECT COALESCE( \
             (SELECT t.created_at FROM order_transitions t \
              WHERE t.order_id = o.id AND t.to_state = $2 ORDER BY t.seq DESC LIMIT 1), \
             CASE WHEN $2 = COALESCE( \
                      (SELECT t.from_state FROM order_transitions t \
                       WHERE t.order_id = o.id ORDER BY t.seq LIMIT 1), o.state) \
                  THEN o.created_at END) \
         FROM orders o WHERE o.id = $1",
    )
    .bind(id.0)
    .bind(state.as_str())
    .fetch_optional(conn)
    .await?
    .flatten())
}
