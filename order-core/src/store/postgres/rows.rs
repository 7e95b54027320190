//! Error mapping, and the reads and inserts that the store and its transactions share,
//! on PostgreSQL. The rows are decoded by the shared structs of `store::decode`; what
//! is PostgreSQL's own here is the connection, the row locks, the order insert, the
//! reads that bind arrays and the mapping of refusals. Every function takes a
//! connection, so it runs the same on a pooled connection and inside a transaction.

use sqlx::postgres::PgConnection;

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
    INBOX_COLUMNS, MESSAGE_COLUMNS, NewOrderRow, ORDER_COLUMNS, PAYMENT_COLUMNS, PRODUCT_COLUMNS,
    Parcels, inbox_from_row, message_from_row, order_from_row, parse, payment_from_row,
    product_from_row, select_orders,
};

/// A refusal by the database as `StoreError::Invalid` with `message` and the database's
/// own words; any other error as it is.
///
/// Refusals are SQLSTATE class 23 (integrity constraint violation: unique, check,
/// foreign key, not null, and the schema's triggers, which raise 23000) and class 22
/// (data exception: a value out of range, text JSONB cannot hold), the errors SQLite
/// reports as `SQLITE_CONSTRAINT`. Serialization failures and deadlocks (class 40)
/// become `StoreError::Retryable`, which the engine runs again.
pub(super) fn refused(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match err.as_database_error() {
        Some(db)
            if db
                .code()
                .is_some_and(|code| code.starts_with("23") || code.starts_with("22")) =>
        {
            StoreError::Invalid(format!("{}: {}", message(), db.message()))
        }
        _ => StoreError::from(err),
    }
}

/// `.map_err(refused(...))` for a query's future, so that a savepoint body reads as
/// one expression.
pub(super) trait MapRefused<T> {
    fn map_err_refused(
        self,
        message: impl FnOnce() -> String + Send,
    ) -> impl std::future::Future<Output = Result<T>> + Send;
}

impl<T, F> MapRefused<T> for F
where
    F: std::future::Future<Output = std::result::Result<T, sqlx::Error>> + Send,
{
    async fn map_err_refused(self, message: impl FnOnce() -> String + Send) -> Result<T> {
        self.await.map_err(|err| refused(err, message))
    }
}

/// The order, and with `lock` its row locked until the transaction ends
/// (`FOR UPDATE OF o`: the order's row, not its customer's).
pub(super) async fn order(
    conn: &mut PgConnection,
    id: OrderId,
    lock: bool,
) -> Result<Option<Order>> {
    let sql = format!(
        "{}{}",
        decode::ORDER_BY_ID,
        if lock { " FOR UPDATE OF o" } else { "" }
    );
    let row = sqlx::query_as::<_, OrderRow>(&sql)
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.map(Order::try_from).transpose()
}

/// Inserts an order at version 0 and returns its id. The id is drawn from the identity
/// sequence and the number (`ORD-000042`, more digits past a million) is derived from
/// it in the same statement. Sequences are not transactional: a rolled-back insert
/// leaves a gap in ids and numbers, never a repeat.
pub(super) async fn insert_order(
    conn: &mut PgConnection,
    row: &NewOrderRow<'_>,
) -> Result<OrderId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (id, number, customer_id, state, version, parent_order_id, \
             currency, total_cents, payment_status, fulfillment_status, shipping_address, \
             created_at, updated_at) \
         SELECT n, 'ORD-' || lpad(n::text, GREATEST(6, length(n::text)), '0'), \
             $1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $9 \
         FROM (SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS n) AS next \
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
    .fetch_one(conn)
    .await
    .map_err(|err| refused(err, || "cannot add the order".to_owned()))?;
    Ok(OrderId(id))
}

pub(super) async fn items(conn: &mut PgConnection, id: OrderId) -> Result<Vec<OrderItem>> {
    let rows = sqlx::query_as::<_, ItemRow>(decode::ITEMS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(OrderItem::from).collect())
}

/// The lines matching `filter` (on `i`, the lines, with one parameter `$1`: an array
/// for a batch), in order and line order.
pub(super) async fn items_where<T>(
    conn: &mut PgConnection,
    filter: &str,
    value: T,
) -> Result<Vec<OrderItem>>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let sql = format!(
        "{} WHERE {filter} ORDER BY i.order_id, i.line_no",
        decode::SELECT_ITEMS
    );
    let rows = sqlx::query_as::<_, ItemRow>(&sql)
        .bind(value)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(OrderItem::from).collect())
}

/// The payments holding a processor reference (a split child shares its parent's),
/// oldest first.
pub(super) async fn payments_by_reference(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Vec<Payment>> {
    let rows = sqlx::query_as::<_, PaymentRow>(decode::PAYMENTS_BY_REFERENCE)
        .bind(reference)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Payment::from).collect())
}

pub(super) async fn payments(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Payment>> {
    let rows = sqlx::query_as::<_, PaymentRow>(decode::PAYMENTS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Payment::from).collect())
}

pub(super) async fn refunds(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Refund>> {
    let rows = sqlx::query_as::<_, RefundRow>(decode::REFUNDS_OF_ORDER)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Refund::from).collect())
}

/// The order's parcels in id order, each with its lines in line id order. Two reads:
/// callers outside a transaction give them one snapshot (REPEATABLE READ).
pub(super) async fn shipments(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Shipment>> {
    shipments_where(conn, Parcels::Of(id), false).await
}

/// One parcel with its lines; with `lock`, its row locked until the transaction ends.
pub(super) async fn shipment(
    conn: &mut PgConnection,
    which: Parcels<'_>,
    lock: bool,
) -> Result<Option<Shipment>> {
    Ok(shipments_where(conn, which, lock).await?.pop())
}

/// Parcels in id order, each with its lines in line id order; with `lock`, the parcels'
/// rows locked (`FOR UPDATE`) until the transaction ends. The lines are read by the
/// parcels' ids, bound as one array.
pub(super) async fn shipments_where(
    conn: &mut PgConnection,
    which: Parcels<'_>,
    lock: bool,
) -> Result<Vec<Shipment>> {
    let sql = format!(
        "{}{}",
        decode::select_shipments(which),
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<ShipmentRow> = bind_parcels!(sqlx::query_as(&sql), which)
        .fetch_all(&mut *conn)
        .await?;
    let mut shipments: Vec<Shipment> = rows.into_iter().map(Shipment::from).collect();
    if shipments.is_empty() {
        return Ok(shipments);
    }
    let ids: Vec<i64> = shipments.iter().map(|s| s.id.0).collect();
    let lines: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT shipment_id, order_item_id, quantity FROM shipment_items \
         WHERE shipment_id = ANY($1) ORDER BY shipment_id, order_item_id",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    decode::attach_lines(&mut shipments, lines);
    Ok(shipments)
}

/// An entity's own audit trail, in sequence order.
pub(super) async fn entity_trail(
    conn: &mut PgConnection,
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

/// The inbox's order: oldest received first, then by external id (byte-wise).
pub(super) const INBOX_ORDER: &str = "received_at, external_id COLLATE \"C\"";

pub(super) async fn history(conn: &mut PgConnection, id: OrderId) -> Result<Vec<TransitionRecord>> {
    let rows = sqlx::query_as::<_, TransitionRow>(decode::HISTORY)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(TransitionRecord::try_from).collect()
}

pub(super) async fn attempts(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Attempt>> {
    let rows = sqlx::query_as::<_, AttemptRow>(decode::ATTEMPTS)
        .bind(id.0)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Attempt::try_from).collect()
}
