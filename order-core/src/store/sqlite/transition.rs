//! One order's transition, statement by statement: the command log, the order row's
//! compare-and-set, its audit row, its outbox row, and the reads they need.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use crate::order::State;
use crate::store::{NewMessage, NewTransition, Result, statements};
use crate::types::{Order, OrderId};

use super::rows::{self, refused};

/// The stored outcome of a command with this key, if one committed.
pub(super) async fn command_outcome(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(statements::COMMAND_OUTCOME)
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

/// Stores a command's outcome under its key; a taken key is refused.
pub(super) async fn record_command(
    conn: &mut SqliteConnection,
    key: &str,
    order: OrderId,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO command_log (idempotency_key, order_id, outcome, created_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(key)
    .bind(order.0)
    .bind(outcome)
    .bind(at)
    .execute(conn)
    .await
    .map_err(|err| refused(err, || format!("cannot record command `{key}`")))?;
    Ok(())
}

/// The order row's compare-and-set: false when its version moved.
pub(super) async fn update_order(
    conn: &mut SqliteConnection,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = statements::update_order!(order, at)
        .execute(conn)
        .await
        .map_err(|err| refused(err, || format!("cannot write order {}", order.id)))?;
    Ok(done.rows_affected() == 1)
}

/// The highest audit sequence number of the order, 0 when it has none.
pub(super) async fn last_seq(conn: &mut SqliteConnection, id: OrderId) -> Result<i64> {
    Ok(sqlx::query_scalar(statements::LAST_SEQ)
        .bind(id.0)
        .fetch_one(conn)
        .await?)
}

/// Appends an order's audit row (the schema's trigger checks its sequence number).
pub(super) async fn append_transition(
    conn: &mut SqliteConnection,
    row: &NewTransition<'_>,
) -> Result<()> {
    let metadata = rows::json_text(row.metadata)?;
    sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
             actor_kind, actor_id, reason, note, is_override, machine_hash, \
             idempotency_key, metadata, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .bind(metadata)
    .bind(row.at)
    .execute(conn)
    .await
    .map_err(|err| {
        refused(err, || {
            format!("cannot append audit row {} of order {}", row.seq, row.order)
        })
    })?;
    Ok(())
}

/// Adds an outbox row; a taken dedupe key is refused.
pub(super) async fn enqueue(conn: &mut SqliteConnection, message: &NewMessage<'_>) -> Result<()> {
    let payload = rows::json_text(message.payload)?;
    sqlx::query(
        "INSERT INTO outbox (aggregate_id, kind, payload, dedupe_key, created_at, \
             delivered_at, attempts, next_attempt_at, last_error) \
         VALUES (?, ?, ?, ?, ?, NULL, 0, ?, NULL)",
    )
    .bind(message.aggregate.0)
    .bind(message.kind)
    .bind(payload)
    .bind(message.dedupe_key)
    .bind(message.at)
    .bind(message.at)
    .execute(conn)
    .await
    .map_err(|err| refused(err, || format!("cannot enqueue `{}`", message.dedupe_key)))?;
    Ok(())
}

/// When the order last entered `state` (from its audit trail).
pub(super) async fn entered_at(
    conn: &mut SqliteConnection,
    id: OrderId,
    state: State,
) -> Result<Option<DateTime<Utc>>> {
    let entered: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT created_at FROM order_transitions WHERE order_id = ? AND to_state = ? \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(id.0)
    .bind(state.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if entered.is_some() {
        return Ok(entered);
    }
    // Never entered by a transition: it was entered at creation if the order was
    // created in it (the first audit row leaves it, or there is none yet).
    Ok(sqlx::query_scalar(
        "SELECT o.created_at FROM orders o WHERE o.id = ? AND ? = COALESCE( \
             (SELECT t.from_state FROM order_transitions t WHERE t.order_id = o.id \
              ORDER BY t.seq LIMIT 1), o.state)",
    )
    .bind(id.0)
    .bind(state.as_str())
    .fetch_optional(conn)
    .await?)
}
