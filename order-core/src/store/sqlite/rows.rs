//! The reads and inserts that the store and its transactions share, on SQLite. The
//! rows are decoded by the shared structs of `store::decode`; what is SQLite's own here
//! is the connection, the order insert, the shipment lines' statement and the mapping
//! of constraint errors. Every function takes a connection, so it runs the same on a
//! pooled connection and inside a transaction.

use sqlx::sqlite::SqliteConnection;

use crate::error::StoreError;
use crate::store::Result;
use crate::store::decode::{
    self, AttemptRow, EntityTransitionRow, ItemRow, OrderRow, PaymentRow, RefundRow, ShipmentRow,
    TransitionRow, bind_parcels,
};
use crate::types::{
    Attempt, EntityTransition, Order, OrderId, OrderItem, Payment, Refund, Shipment,
    TransitionRecord,
};

pub(super) use crate::store::decode::{
    INBOX_COLUMNS, MESSAGE_COLUMNS, NewOrderRow, PRODUCT_COLUMNS, Parcels, inbox_from_row,
    message_from_row, order_from_row, parse, payment_from_row, product_from_row, select_orders,
};

/// JSON text to store.
pub(super) fn json_text(value: &serde_json::Value) -> Result<String> {
    serde_json::to_string(value).map_err(|err| StoreError::Invalid(format!("metadata: {err}")))
}

/// A constraint's refusal (`SQLITE_CONSTRAINT`: unique, check, foreign key, not null,
/// or a trigger's `RAISE`) as `StoreError::Invalid` with `message` and the database's
/// own words; any other error as it is.
pub(super) fn refused(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    /// The primary result code of every constraint violation.
    const SQLITE_CONSTRAINT: i32 = 19;
    match err.as_database_error() {
        Some(db)
            if db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT) =>
        {
            StoreError::Invalid(format!("{}: {}", message(), db.message()))
        }
        _ => StoreError::from(err),
    }
}

pub(super) async fn order(conn: &mut SqliteConnection, id: OrderId) -> Result<Option<Order>> {
    let row = sqlx::query_as::<_, OrderRow>(decode::ORDER_BY_ID)
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.map(Order::try_from).transpose()
}

/// Inserts an order at version 0 and returns its id. The id is the next one and the
/// number (`ORD-000042`) is derived from it in the same statement; the caller's write
/// transaction makes "the next one" safe.
pub(super) async fn insert_order(
    conn: &mut SqliteConnection,
    row: &NewOrderRow<'_>,
) -> Result<OrderId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (id, number, customer_id, state, version, parent_order_id, \
             currency, total_cents, payment_status, fulfillment_status, shipping_address, \
             created_at, updated_at) \
         SELECT n, printf('ORD-%06d', n), ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ? \
         FROM (SELECT COALESCE(MAX(id), 0) + 1 AS n FROM orders) \
         RETURNING id",
    )
    .bind(row.customer.0)
    .bind(row.state.as_str())
    .bind(row.parent.map(|p| p.0))
    .bind(row.currency)
    .bind(row.total_cents)
    .bind(row.payment_status.as_str())
    .bind(row.fulfillment_status.as_str())
    .bind(row.shipping_address)
    .bind(row.at)
    .bind(row.at)
    .fetch_one(conn)
    .await?;
    Ok(OrderId(id))
}

pub(super) async fn items(conn: &mut SqliteConnection, id: OrderId) -> Result<Vec<OrderItem>> {
    let rows = sqlx::query_as::<_, ItemRow>(decode::ITEMS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(OrderItem::from).collect())
}

/// The payments holding a processor reference (a split child shares its parent's),
/// oldest first.
pub(super) async fn payments_by_reference(
    conn: &mut SqliteConnection,
    reference: &str,
) -> Result<Vec<Payment>> {
    let rows = sqlx::query_as::<_, PaymentRow>(decode::PAYMENTS_BY_REFERENCE)
        .bind(reference)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Payment::from).collect())
}

pub(super) async fn payments(conn: &mut SqliteConnection, id: OrderId) -> Result<Vec<Payment>> {
    let rows = sqlx::query_as::<_, PaymentRow>(decode::PAYMENTS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Payment::from).collect())
}

pub(super) async fn refunds(conn: &mut SqliteConnection, id: OrderId) -> Result<Vec<Refund>> {
    let rows = sqlx::query_as::<_, RefundRow>(decode::REFUNDS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Refund::from).collect())
}

/// The order's parcels in id order, each with its lines in line id order.
pub(super) async fn shipments(conn: &mut SqliteConnection, id: OrderId) -> Result<Vec<Shipment>> {
    shipments_where(conn, Parcels::Of(id)).await
}

/// One parcel with its lines.
pub(super) async fn shipment(
    conn: &mut SqliteConnection,
    which: Parcels<'_>,
) -> Result<Option<Shipment>> {
    Ok(shipments_where(conn, which).await?.pop())
}

/// Parcels in id order, each with its lines in line id order. Two reads: callers
/// outside a transaction give them one snapshot. The lines are selected by the same
/// filter, joined to their parcels, rather than by a list of ids (SQLite binds no
/// arrays).
pub(super) async fn shipments_where(
    conn: &mut SqliteConnection,
    which: Parcels<'_>,
) -> Result<Vec<Shipment>> {
    let sql = decode::select_shipments(which);
    let rows: Vec<ShipmentRow> = bind_parcels!(sqlx::query_as(&sql), which)
        .fetch_all(&mut *conn)
        .await?;
    let mut shipments: Vec<Shipment> = rows.into_iter().map(Shipment::from).collect();
    if shipments.is_empty() {
        return Ok(shipments);
    }
    let sql = format!(
        "SELECT si.shipment_id, si.order_item_id, si.quantity \
         FROM shipment_items si JOIN shipments s ON s.id = si.shipment_id \
         WHERE {} ORDER BY si.shipment_id, si.order_item_id",
        which.filter()
    );
    let lines: Vec<(i64, i64, i64)> = bind_parcels!(sqlx::query_as(&sql), which)
        .fetch_all(conn)
        .await?;
    decode::attach_lines(&mut shipments, lines);
    Ok(shipments)
}

/// An entity's own audit trail, in sequence order.
pub(super) async fn entity_trail(
    conn: &mut SqliteConnection,
    machine: &str,
    entity: i64,
) -> Result<Vec<EntityTransition>> {
    let rows = sqlx::query_as::<_, EntityTransitionRow>(decode::ENTITY_TRAIL)
        .bind(machine)
        .bind(entity)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(EntityTransition::try_from).collect()
}

pub(super) async fn history(
    conn: &mut SqliteConnection,
    id: OrderId,
) -> Result<Vec<TransitionRecord>> {
    let rows = sqlx::query_as::<_, TransitionRow>(decode::HISTORY)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(TransitionRecord::try_from).collect()
}

pub(super) async fn attempts(conn: &mut SqliteConnection, id: OrderId) -> Result<Vec<Attempt>> {
    let rows = sqlx::query_as::<_, AttemptRow>(decode::ATTEMPTS)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Attempt::try_from).collect()
}
