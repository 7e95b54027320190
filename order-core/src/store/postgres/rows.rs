//! Row decoding, error mapping, and the reads and inserts that the store and its
//! transactions share. Every function takes a connection, so it runs the same on a
//! pooled connection and inside a transaction.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use crate::error::StoreError;
use crate::order::State;
use crate::store::Result;
use crate::types::{
    Attempt, CustomerId, EntityTransition, FulfillmentStatus, InboxMessage, ItemId, Order, OrderId,
    OrderItem, OutboxMessage, Payment, PaymentId, PaymentStatus, Product, ProductId, Refund,
    Shipment, ShipmentId, TransitionRecord,
};

/// Parses a stored name; text that names nothing is corrupt data.
pub(super) fn parse<T>(column: &str, text: &str) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse()
        .map_err(|err| StoreError::Corrupt(format!("{column}: {err}")))
}

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

pub(super) const ORDER_COLUMNS: &str = "o.id, o.number, o.customer_id, c.email, o.state, o.version, \
     o.parent_order_id, o.currency, o.total_cents, o.payment_status, o.fulfillment_status, \
     o.shipping_address, o.created_at, o.updated_at";

/// `SELECT <order columns> FROM orders o JOIN customers c`, to be followed by a filter.
pub(super) fn select_orders(prefix: &str) -> String {
    format!("{prefix}SELECT {ORDER_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id")
}

pub(super) fn order_from_row(row: &PgRow) -> Result<Order> {
    Ok(Order {
        id: OrderId(row.try_get("id")?),
        number: row.try_get("number")?,
        customer: CustomerId(row.try_get("customer_id")?),
        customer_email: row.try_get("email")?,
        state: parse("orders.state", row.try_get("state")?)?,
        version: row.try_get("version")?,
        parent: row
            .try_get::<Option<i64>, _>("parent_order_id")?
            .map(OrderId),
        currency: row.try_get("currency")?,
        total_cents: row.try_get("total_cents")?,
        payment_status: parse::<PaymentStatus>(
            "orders.payment_status",
            row.try_get("payment_status")?,
        )?,
        fulfillment_status: parse::<FulfillmentStatus>(
            "orders.fulfillment_status",
            row.try_get("fulfillment_status")?,
        )?,
        shipping_address: row.try_get("shipping_address")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The order, and with `lock` its row locked until the transaction ends
/// (`FOR UPDATE OF o`: the order's row, not its customer's).
pub(super) async fn order(
    conn: &mut PgConnection,
    id: OrderId,
    lock: bool,
) -> Result<Option<Order>> {
    let sql = format!(
        "{} WHERE o.id = $1{}",
        select_orders(""),
        if lock { " FOR UPDATE OF o" } else { "" }
    );
    let row = sqlx::query(&sql).bind(id.0).fetch_optional(conn).await?;
    row.as_ref().map(order_from_row).transpose()
}

/// The columns of a new order row.
#[derive(Debug)]
pub(super) struct OrderRow<'a> {
    pub customer: CustomerId,
    pub state: State,
    pub parent: Option<OrderId>,
    pub currency: &'a str,
    pub total_cents: i64,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub shipping_address: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Inserts an order at version 0 and returns its id. The id is drawn from the identity
/// sequence and the number (`ORD-000042`, more digits past a million) is derived from
/// it in the same statement. Sequences are not transactional: a rolled-back insert
/// leaves a gap in ids and numbers, never a repeat.
pub(super) async fn insert_order(conn: &mut PgConnection, row: &OrderRow<'_>) -> Result<OrderId> {
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

pub(super) const PRODUCT_COLUMNS: &str = "id, sku, name, price_cents, on_hand, reserved";

pub(super) fn product_from_row(row: &PgRow) -> Result<Product> {
    Ok(Product {
        id: ProductId(row.try_get("id")?),
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        price_cents: row.try_get("price_cents")?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}

pub(super) async fn items(conn: &mut PgConnection, id: OrderId) -> Result<Vec<OrderItem>> {
    items_where(conn, "i.order_id = $1", id.0).await
}

/// The lines matching `filter` (on `i`, the lines, with one parameter `$1`), in order
/// and line order.
pub(super) async fn items_where<T>(
    conn: &mut PgConnection,
    filter: &str,
    value: T,
) -> Result<Vec<OrderItem>>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let sql = format!(
        "SELECT i.id, i.order_id, i.line_no, i.product_id, p.sku, i.quantity, \
             i.unit_price_cents, i.qty_shipped, i.qty_returned \
         FROM order_items i JOIN products p ON p.id = i.product_id \
         WHERE {filter} ORDER BY i.order_id, i.line_no"
    );
    let rows = sqlx::query(&sql).bind(value).fetch_all(conn).await?;
    rows.iter().map(item_from_row).collect()
}

/// A line from a row with the columns of `items_where`.
fn item_from_row(row: &PgRow) -> Result<OrderItem> {
    Ok(OrderItem {
        id: ItemId(row.try_get("id")?),
        order: OrderId(row.try_get("order_id")?),
        line_no: row.try_get("line_no")?,
        product: ProductId(row.try_get("product_id")?),
        sku: row.try_get("sku")?,
        quantity: row.try_get("quantity")?,
        unit_price_cents: row.try_get("unit_price_cents")?,
        qty_shipped: row.try_get("qty_shipped")?,
        qty_returned: row.try_get("qty_returned")?,
    })
}

pub(super) const PAYMENT_COLUMNS: &str = "id, order_id, attempt_no, state, amount_cents, \
     idempotency_key, processor_ref, failure_code, fraud_review";

/// The payments holding a processor reference (a split child shares its parent's),
/// oldest first.
pub(super) async fn payments_by_reference(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Vec<Payment>> {
    let sql =
        format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE processor_ref = $1 ORDER BY id");
    let rows = sqlx::query(&sql).bind(reference).fetch_all(conn).await?;
    rows.iter().map(payment_from_row).collect()
}

pub(super) async fn payments(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Payment>> {
    let sql =
        format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY attempt_no");
    let rows = sqlx::query(&sql).bind(id.0).fetch_all(conn).await?;
    rows.iter().map(payment_from_row).collect()
}

pub(super) fn payment_from_row(row: &PgRow) -> Result<Payment> {
    Ok(Payment {
        id: PaymentId(row.try_get("id")?),
        order: OrderId(row.try_get("order_id")?),
        attempt_no: row.try_get("attempt_no")?,
        state: row.try_get("state")?,
        amount_cents: row.try_get("amount_cents")?,
        idempotency_key: row.try_get("idempotency_key")?,
        processor_ref: row.try_get("processor_ref")?,
        failure_code: row.try_get("failure_code")?,
        fraud_review: row.try_get("fraud_review")?,
    })
}

pub(super) async fn refunds(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Refund>> {
    let rows = sqlx::query(
        "SELECT order_id, payment_id, amount_cents, state, reason, idempotency_key, \
             processor_ref \
         FROM refunds WHERE order_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Refund {
                order: OrderId(row.try_get("order_id")?),
                payment: PaymentId(row.try_get("payment_id")?),
                amount_cents: row.try_get("amount_cents")?,
                state: row.try_get("state")?,
                reason: row.try_get("reason")?,
                idempotency_key: row.try_get("idempotency_key")?,
                processor_ref: row.try_get("processor_ref")?,
            })
        })
        .collect()
}

/// Which parcels [`shipments_where`] reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum Parcels<'a> {
    /// An order's.
    Of(OrderId),
    /// One by id.
    Id(ShipmentId),
    /// The newest one with this tracking number.
    Tracking(&'a str),
}

impl Parcels<'_> {
    /// The condition on `s` (the shipments), with one parameter `$1`.
    fn filter(self) -> &'static str {
        match self {
            Parcels::Of(_) => "s.order_id = $1",
            Parcels::Id(_) => "s.id = $1",
            Parcels::Tracking(_) => {
                "s.id = (SELECT MAX(t.id) FROM shipments t WHERE t.tracking_number = $1)"
            }
        }
    }
}

/// Binds the parameter of [`Parcels::filter`].
macro_rules! bind_parcels {
    ($query:expr, $which:expr) => {
        match $which {
            Parcels::Of(id) => $query.bind(id.0),
            Parcels::Id(id) => $query.bind(id.0),
            Parcels::Tracking(tracking) => $query.bind(tracking),
        }
    };
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
/// rows locked (`FOR UPDATE`) until the transaction ends.
pub(super) async fn shipments_where(
    conn: &mut PgConnection,
    which: Parcels<'_>,
    lock: bool,
) -> Result<Vec<Shipment>> {
    let sql = format!(
        "SELECT s.id, s.order_id, s.state, s.carrier, s.tracking_number, s.shipped_at, \
             s.delivered_at \
         FROM shipments s WHERE {} ORDER BY s.id{}",
        which.filter(),
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = bind_parcels!(sqlx::query(&sql), which)
        .fetch_all(&mut *conn)
        .await?;
    let mut shipments = rows
        .iter()
        .map(|row| {
            Ok(Shipment {
                id: ShipmentId(row.try_get("id")?),
                order: OrderId(row.try_get("order_id")?),
                state: row.try_get("state")?,
                carrier: row.try_get("carrier")?,
                tracking_number: row.try_get("tracking_number")?,
                items: Vec::new(),
                shipped_at: row.try_get("shipped_at")?,
                delivered_at: row.try_get("delivered_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
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
    for (shipment, item, quantity) in lines {
        if let Some(parcel) = shipments.iter_mut().find(|s| s.id.0 == shipment) {
            parcel.items.push((ItemId(item), quantity));
        }
    }
    Ok(shipments)
}

/// An entity's own audit trail, in sequence order.
pub(super) async fn entity_trail(
    conn: &mut PgConnection,
    machine: &str,
    entity: i64,
) -> Result<Vec<EntityTransition>> {
    let rows = sqlx::query(
        "SELECT machine, entity_id, order_id, seq, event, from_state, to_state, actor_kind, \
             actor_id, reason, is_override, machine_hash, external_id, metadata, created_at \
         FROM entity_transitions WHERE machine = $1 AND entity_id = $2 ORDER BY seq",
    )
    .bind(machine)
    .bind(entity)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(EntityTransition {
                machine: row.try_get("machine")?,
                entity: row.try_get("entity_id")?,
                order: OrderId(row.try_get("order_id")?),
                seq: row.try_get("seq")?,
                event: row.try_get("event")?,
                from: row.try_get("from_state")?,
                to: row.try_get("to_state")?,
                actor_kind: row.try_get("actor_kind")?,
                actor_id: row.try_get("actor_id")?,
                reason: row.try_get("reason")?,
                is_override: row.try_get("is_override")?,
                machine_hash: row.try_get("machine_hash")?,
                external_id: row.try_get("external_id")?,
                metadata: row.try_get("metadata")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub(super) const INBOX_COLUMNS: &str =
    "source, external_id, payload, received_at, processed_at, outcome";

/// The inbox's order: oldest received first, then by external id (byte-wise).
pub(super) const INBOX_ORDER: &str = "received_at, external_id COLLATE \"C\"";

pub(super) fn inbox_from_row(row: &PgRow) -> Result<InboxMessage> {
    let payload: &str = row.try_get("payload")?;
    Ok(InboxMessage {
        source: row.try_get("source")?,
        external_id: row.try_get("external_id")?,
        payload: serde_json::from_str(payload)
            .map_err(|err| StoreError::Corrupt(format!("inbox.payload: {err}")))?,
        received_at: row.try_get("received_at")?,
        processed_at: row.try_get("processed_at")?,
        outcome: row.try_get("outcome")?,
    })
}

pub(super) async fn history(conn: &mut PgConnection, id: OrderId) -> Result<Vec<TransitionRecord>> {
    let rows = sqlx::query(
        "SELECT order_id, seq, event, from_state, to_state, actor_kind, actor_id, reason, note, \
             is_override, machine_hash, idempotency_key, metadata, created_at \
         FROM order_transitions WHERE order_id = $1 ORDER BY seq",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let reason: Option<&str> = row.try_get("reason")?;
            Ok(TransitionRecord {
                order: OrderId(row.try_get("order_id")?),
                seq: row.try_get("seq")?,
                event: parse("order_transitions.event", row.try_get("event")?)?,
                from: parse("order_transitions.from_state", row.try_get("from_state")?)?,
                to: parse("order_transitions.to_state", row.try_get("to_state")?)?,
                actor_kind: parse("order_transitions.actor_kind", row.try_get("actor_kind")?)?,
                actor_id: row.try_get("actor_id")?,
                reason: reason
                    .map(|r| parse("order_transitions.reason", r))
                    .transpose()?,
                note: row.try_get("note")?,
                is_override: row.try_get("is_override")?,
                machine_hash: row.try_get("machine_hash")?,
                idempotency_key: row.try_get("idempotency_key")?,
                metadata: row.try_get("metadata")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub(super) async fn attempts(conn: &mut PgConnection, id: OrderId) -> Result<Vec<Attempt>> {
    let rows = sqlx::query(
        "SELECT order_id, event, actor_kind, actor_id, error_kind, error, created_at \
         FROM transition_attempts WHERE order_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Attempt {
                order: OrderId(row.try_get("order_id")?),
                event: parse("transition_attempts.event", row.try_get("event")?)?,
                actor_kind: parse("transition_attempts.actor_kind", row.try_get("actor_kind")?)?,
                actor_id: row.try_get("actor_id")?,
                error_kind: row.try_get("error_kind")?,
                error: row.try_get("error")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, aggregate_id, kind, payload, dedupe_key, attempts, created_at, delivered_at";

pub(super) fn message_from_row(row: &PgRow) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        aggregate: OrderId(row.try_get("aggregate_id")?),
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        dedupe_key: row.try_get("dedupe_key")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}
