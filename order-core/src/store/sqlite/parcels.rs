//! The shipment machine's part of a transaction: parcels (locked, found by tracking
//! number, moved through their states with an audit row), the shipped quantities of
//! order lines, and the webhook inbox.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use crate::error::StoreError;
use crate::store::entity;
use crate::store::{NewEntityTransition, Result, statements};
use crate::types::{InboxMessage, ItemId, Shipment, ShipmentId};

use super::rows::{self, Parcels, refused};
use super::writes;

/// Sets a line's `qty_shipped`.
pub(super) async fn set_shipped(
    conn: &mut SqliteConnection,
    item: ItemId,
    qty_shipped: i64,
) -> Result<()> {
    let done = sqlx::query(statements::SET_SHIPPED)
        .bind(qty_shipped)
        .bind(item.0)
        .execute(conn)
        .await
        .map_err(|err| {
            refused(err, || {
                format!("cannot mark {qty_shipped} of line {item} shipped")
            })
        })?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!("no order line {item}")));
    }
    Ok(())
}

/// Reads a shipment and locks it for the rest of the transaction.
pub(super) async fn lock_shipment(
    conn: &mut SqliteConnection,
    id: ShipmentId,
) -> Result<Option<Shipment>> {
    // `BEGIN IMMEDIATE` already holds the write lock: nobody else writes until commit.
    rows::shipment(conn, Parcels::Id(id)).await
}

/// The shipment with this tracking number, unlocked.
pub(super) async fn shipment_by_tracking(
    conn: &mut SqliteConnection,
    tracking: &str,
) -> Result<Option<Shipment>> {
    rows::shipment(conn, Parcels::Tracking(tracking)).await
}

/// A parcel's state change and its audit row, in a savepoint: both or neither.
pub(super) async fn write_shipment_transition(
    conn: &mut SqliteConnection,
    row: &NewEntityTransition<'_>,
) -> Result<()> {
    entity::check_shipment_row(row)?;
    let metadata = rows::json_text(row.metadata)?;
    let mut savepoint = sqlx::Connection::begin(conn).await?;
    writes::shipment_transition(&mut savepoint, row, &metadata).await?;
    savepoint.commit().await?;
    Ok(())
}

/// Stores a webhook unless one with the same source and external id is stored: true
/// when it was new.
pub(super) async fn inbox_receive(
    conn: &mut SqliteConnection,
    source: &str,
    external_id: &str,
    payload: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool> {
    let payload = rows::json_text(payload)?;
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
    conn: &mut SqliteConnection,
    source: &str,
    limit: i64,
) -> Result<Vec<InboxMessage>> {
    // SQLite compares text byte-wise already, where PostgreSQL needs `COLLATE "C"`.
    let sql = format!(
        "SELECT {} FROM inbox WHERE source = ? AND processed_at IS NULL \
         ORDER BY received_at, external_id LIMIT ?",
        rows::INBOX_COLUMNS
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
    conn: &mut SqliteConnection,
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
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "no inbox message `{external_id}` from `{source}`"
        )));
    }
    Ok(())
}
