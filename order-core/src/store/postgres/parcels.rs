//! The shipment machine's part of a transaction: parcels (locked, found by tracking
//! number, moved through their states with an audit row), the shipped quantities of
//! order lines, and the webhook inbox.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use crate::error::StoreError;
use crate::store::entity;
use crate::store::{NewEntityTransition, Result, statements};
use crate::types::{InboxMessage, ItemId, Shipment, ShipmentId};

use super::rows::{self, MapRefused as _, Parcels, refused};
use super::tx::in_savepoint;

/// Sets a line's `qty_shipped`, inside a savepoint.
pub(super) async fn set_shipped(
    conn: &mut PgConnection,
    item: ItemId,
    qty_shipped: i64,
) -> Result<()> {
    let done = in_savepoint!(conn, |conn| {
        sqlx::query(statements::SET_SHIPPED)
            .bind(qty_shipped)
            .bind(item.0)
            .execute(conn)
            .map_err_refused(|| format!("cannot mark {qty_shipped} of line {item} shipped"))
    })?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!("no order line {item}")));
    }
    Ok(())
}

/// Reads a shipment and locks it for the rest of the transaction.
pub(super) async fn lock_shipment(
    conn: &mut PgConnection,
    id: ShipmentId,
) -> Result<Option<Shipment>> {
    // `FOR UPDATE`: a second transaction locking the parcel waits here until this one
    // ends, then reads the committed row.
    rows::shipment(conn, Parcels::Id(id), true).await
}

/// The shipment with this tracking number, unlocked.
pub(super) async fn shipment_by_tracking(
    conn: &mut PgConnection,
    tracking: &str,
) -> Result<Option<Shipment>> {
    rows::shipment(conn, Parcels::Tracking(tracking), false).await
}

/// A parcel's state change and its audit row; refused (writing nothing, raising
/// nothing) unless the parcel is in `row.from`, on `row.order`, and `row.seq` follows
/// its trail.
pub(super) async fn write_shipment_transition(
    conn: &mut PgConnection,
    row: &NewEntityTransition<'_>,
) -> Result<()> {
    // One statement: the parcel's conditional update and, only when it wrote, the
    // audit row. Every rule is in the WHERE clause (the target state is checked
    // before), so a refusal writes nothing and raises nothing; the sequence trigger
    // and the unique constraint only back it up against a caller that did not lock
    // the parcel.
    entity::check_shipment_row(row)?;
    let written: i64 = sqlx::query_scalar(
        "WITH s AS ( \
             UPDATE shipments SET state = $1, \
                 delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END \
             WHERE id = $3 AND order_id = $4 AND state = $5 \
               AND $6 = (SELECT COALESCE(MAX(t.seq), 0) + 1 FROM entity_transitions t \
                         WHERE t.machine = $7 AND t.entity_id = $3) \
             RETURNING id, order_id \
         ), t AS ( \
             INSERT INTO entity_transitions (machine, entity_id, order_id, seq, event, \
                 from_state, to_state, actor_kind, actor_id, reason, is_override, \
                 machine_hash, external_id, metadata, created_at) \
             SELECT $7, s.id, s.order_id, $6, $8, $5, $1, $9, $10, $11, $12, $13, $14, \
                 $15, $2 \
             FROM s RETURNING id \
         ) \
         SELECT COUNT(*) FROM t",
    )
    .bind(row.to)
    .bind(row.at)
    .bind(row.entity)
    .bind(row.order.0)
    .bind(row.from)
    .bind(row.seq)
    .bind(entity::SHIPMENT)
    .bind(row.event)
    .bind(row.actor_kind)
    .bind(row.actor_id)
    .bind(row.reason)
    .bind(row.is_override)
    .bind(row.machine_hash)
    .bind(row.external_id)
    .bind(row.metadata)
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| refused(err, || statements::audit_row_refused(row)))?;
    if written == 1 {
        return Ok(());
    }
    let found: entity::Found = sqlx::query_as(statements::SHIPMENT_FOUND)
        .bind(entity::SHIPMENT)
        .bind(row.entity)
        .fetch_optional(conn)
        .await?;
    Err(entity::shipment_refusal(row, found))
}

/// Stores a webhook unless one with the same source and external id is stored: true
/// when it was new.
pub(super) async fn inbox_receive(
    conn: &mut PgConnection,
    source: &str,
    external_id: &str,
    payload: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool> {
    // Text, as received (the column is TEXT on both databases).
    let payload = serde_json::to_string(payload)
        .map_err(|err| StoreError::Invalid(format!("payload: {err}")))?;
    let done = sqlx::query(statements::INBOX_RECEIVE)
        .bind(source)
        .bind(external_id)
        .bind(payload)
        .bind(at)
        .execute(conn)
        .await
        .map_err(|err| {
            refused(err, || {
                format!("cannot receive `{external_id}` from `{source}`")
            })
        })?;
    Ok(done.rows_affected() == 1)
}

/// Up to `limit` unprocessed messages of `source`, oldest received first (then by
/// external id).
pub(super) async fn inbox_pending(
    conn: &mut PgConnection,
    source: &str,
    limit: i64,
) -> Result<Vec<InboxMessage>> {
    let sql = format!(
        "SELECT {} FROM inbox WHERE source = $1 AND processed_at IS NULL \
         ORDER BY {} LIMIT $2",
        rows::INBOX_COLUMNS,
        rows::INBOX_ORDER
    );
    let found = sqlx::query(&sql)
        .bind(source)
        .bind(limit.max(0))
        .fetch_all(conn)
        .await?;
    found.iter().map(rows::inbox_from_row).collect()
}

/// Marks a message processed with what came of it.
pub(super) async fn inbox_done(
    conn: &mut PgConnection,
    source: &str,
    external_id: &str,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let done = sqlx::query(statements::INBOX_DONE)
        .bind(at)
        .bind(outcome)
        .bind(source)
        .bind(external_id)
        .execute(conn)
        .await
        .map_err(|err| {
            refused(err, || {
                format!("cannot mark `{external_id}` from `{source}` processed")
            })
        })?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "no inbox message `{external_id}` from `{source}`"
        )));
    }
    Ok(())
}
