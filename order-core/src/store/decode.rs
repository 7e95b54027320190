//! What both adapters read the same way: the SELECT statements whose text suits both
//! databases, the rows they return as database-neutral structs, and each struct's
//! conversion into its domain type.
//!
//! A row struct holds only types that decode on SQLite and on PostgreSQL alike (`i64`,
//! `String`, `bool`, which SQLite keeps as INTEGER 0/1, and `DateTime<Utc>`), so each
//! adapter fetches it with `query_as` and keeps only what differs: its executor and
//! the SQL text where the databases disagree (`FOR UPDATE`, collations, arrays).
//! Placeholders are `$1`, `$2`, ..., which SQLite accepts as well.
//!
//! Stored names (a state, an event, an actor) are checked here, once: a name that
//! means nothing is `StoreError::Corrupt` naming its column.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, FromRow, Postgres, Row, Sqlite, Type};

use crate::error::StoreError;
use crate::order::State;
use crate::store::Result;
use crate::types::{
    CustomerId, FulfillmentStatus, ItemId, Order, OrderId, OrderItem, Payment, PaymentId,
    PaymentStatus, Product, ProductId, Refund, Shipment, ShipmentId,
};

mod audit;

pub(super) use audit::{
    ATTEMPTS, AttemptRow, ENTITY_TRAIL, EntityTransitionRow, HISTORY, INBOX_COLUMNS,
    MESSAGE_COLUMNS, TransitionRow, inbox_from_row, message_from_row,
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

/// Parses stored JSON text.
pub(super) fn json(column: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("{column}: {err}")))
}

/// A JSON column as each database hands it over. SQLite keeps JSON as TEXT, which is
/// parsed on conversion so that text that is not JSON is reported as corrupt data
/// naming its column; PostgreSQL keeps JSONB, which its driver decodes itself.
/// (`sqlx::types::Json` would parse SQLite's text inside the driver, where a failure
/// is the driver's decoding error rather than `StoreError::Corrupt` naming the table
/// and the column, as the adapters have always reported it.)
#[derive(Debug)]
pub(super) enum JsonColumn {
    Text(String),
    Value(serde_json::Value),
}

impl JsonColumn {
    fn into_value(self, column: &str) -> Result<serde_json::Value> {
        match self {
            JsonColumn::Text(text) => json(column, &text),
            JsonColumn::Value(value) => Ok(value),
        }
    }
}

impl Type<Sqlite> for JsonColumn {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for JsonColumn {
    fn decode(value: SqliteValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        <String as Decode<'r, Sqlite>>::decode(value).map(JsonColumn::Text)
    }
}

impl Type<Postgres> for JsonColumn {
    fn type_info() -> PgTypeInfo {
        <serde_json::Value as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <serde_json::Value as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for JsonColumn {
    fn decode(value: PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        <serde_json::Value as Decode<'r, Postgres>>::decode(value).map(JsonColumn::Value)
    }
}

// The column lists are macros, not constants, so that the statements below can be
// put together at compile time with `concat!`.

/// The order columns: `o` the orders, `c` their customers.
macro_rules! order_columns {
    () => {
        "o.id, o.number, o.customer_id, c.email, o.state, o.version, o.parent_order_id, \
         o.currency, o.total_cents, o.payment_status, o.fulfillment_status, \
         o.shipping_address, o.created_at, o.updated_at"
    };
}

macro_rules! payment_columns {
    () => {
        "id, order_id, attempt_no, state, amount_cents, idempotency_key, processor_ref, \
         failure_code, fraud_review"
    };
}

/// The lines with their products' SKUs: `i` the lines, `p` the products.
macro_rules! select_items {
    () => {
        "SELECT i.id, i.order_id, i.line_no, i.product_id, p.sku, i.quantity, \
             i.unit_price_cents, i.qty_shipped, i.qty_returned \
         FROM order_items i JOIN products p ON p.id = i.product_id"
    };
}

/// The columns of [`OrderRow`], for statements that read them beside others.
pub(super) const ORDER_COLUMNS: &str = order_columns!();

/// `SELECT <order columns> FROM orders o JOIN customers c`, to be followed by a filter.
macro_rules! select_orders {
    () => {
        concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders o JOIN customers c ON c.id = o.customer_id"
        )
    };
}

/// [`select_orders!`] after `prefix` (e.g. `EXPLAIN `).
pub(super) fn select_orders(prefix: &str) -> String {
    format!("{prefix}{}", select_orders!())
}

/// One order by id (`$1`); PostgreSQL may append a lock.
pub(super) const ORDER_BY_ID: &str = concat!(select_orders!(), " WHERE o.id = $1");

/// The columns of [`ProductRow`].
pub(super) const PRODUCT_COLUMNS: &str = "id, sku, name, price_cents, on_hand, reserved";

/// The columns of [`ItemRow`] with their tables, to be followed by a filter on `i`.
pub(super) const SELECT_ITEMS: &str = select_items!();

/// An order's (`$1`) lines in line order.
pub(super) const ITEMS_OF_ORDER: &str =
    concat!(select_items!(), " WHERE i.order_id = $1 ORDER BY i.line_no");

/// The columns of [`PaymentRow`].
pub(super) const PAYMENT_COLUMNS: &str = payment_columns!();

/// An order's (`$1`) payments in attempt order.
pub(super) const PAYMENTS_OF_ORDER: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments WHERE order_id = $1 ORDER BY attempt_no"
);

/// The payments holding a processor reference (`$1`), oldest first.
pub(super) const PAYMENTS_BY_REFERENCE: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments WHERE processor_ref = $1 ORDER BY id"
);

/// An order's (`$1`) refunds, oldest first.
pub(super) const REFUNDS_OF_ORDER: &str = "SELECT order_id, payment_id, amount_cents, state, \
         reason, idempotency_key, processor_ref \
     FROM refunds WHERE order_id = $1 ORDER BY id";

/// An order's row with its customer's email ([`ORDER_COLUMNS`]).
#[derive(Debug, FromRow)]
pub(super) struct OrderRow {
    id: i64,
    number: String,
    customer_id: i64,
    email: String,
    state: String,
    version: i64,
    parent_order_id: Option<i64>,
    currency: String,
    total_cents: i64,
    payment_status: String,
    fulfillment_status: String,
    shipping_address: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;

    fn try_from(row: OrderRow) -> Result<Order> {
        Ok(Order {
            id: OrderId(row.id),
            number: row.number,
            customer: CustomerId(row.customer_id),
            customer_email: row.email,
            state: parse("orders.state", &row.state)?,
            version: row.version,
            parent: row.parent_order_id.map(OrderId),
            currency: row.currency,
            total_cents: row.total_cents,
            payment_status: parse::<PaymentStatus>("orders.payment_status", &row.payment_status)?,
            fulfillment_status: parse::<FulfillmentStatus>(
                "orders.fulfillment_status",
                &row.fulfillment_status,
            )?,
            shipping_address: row.shipping_address,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// An order from a row holding [`ORDER_COLUMNS`]; other columns beside them (the
/// reads PostgreSQL makes in the statement that locks the order) are left alone.
pub(super) fn order_from_row<'r, R: Row>(row: &'r R) -> Result<Order>
where
    OrderRow: FromRow<'r, R>,
{
    OrderRow::from_row(row)?.try_into()
}

/// A product's row ([`PRODUCT_COLUMNS`]).
#[derive(Debug, FromRow)]
pub(super) struct ProductRow {
    id: i64,
    sku: String,
    name: String,
    price_cents: i64,
    on_hand: i64,
    reserved: i64,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Product {
        Product {
            id: ProductId(row.id),
            sku: row.sku,
            name: row.name,
            price_cents: row.price_cents,
            on_hand: row.on_hand,
            reserved: row.reserved,
        }
    }
}

/// A product from a row holding [`PRODUCT_COLUMNS`].
pub(super) fn product_from_row<'r, R: Row>(row: &'r R) -> Result<Product>
where
    ProductRow: FromRow<'r, R>,
{
    Ok(ProductRow::from_row(row)?.into())
}

/// An order line with its product's SKU ([`SELECT_ITEMS`]).
#[derive(Debug, FromRow)]
pub(super) struct ItemRow {
    id: i64,
    order_id: i64,
    line_no: i64,
    product_id: i64,
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
    qty_shipped: i64,
    qty_returned: i64,
}

impl From<ItemRow> for OrderItem {
    fn from(row: ItemRow) -> OrderItem {
        OrderItem {
            id: ItemId(row.id),
            order: OrderId(row.order_id),
            line_no: row.line_no,
            product: ProductId(row.product_id),
            sku: row.sku,
            quantity: row.quantity,
            unit_price_cents: row.unit_price_cents,
            qty_shipped: row.qty_shipped,
            qty_returned: row.qty_returned,
        }
    }
}

/// A payment's row ([`PAYMENT_COLUMNS`]).
#[derive(Debug, FromRow)]
pub(super) struct PaymentRow {
    id: i64,
    order_id: i64,
    attempt_no: i64,
    state: String,
    amount_cents: i64,
    idempotency_key: String,
    processor_ref: Option<String>,
    failure_code: Option<String>,
    fraud_review: bool,
}

impl From<PaymentRow> for Payment {
    fn from(row: PaymentRow) -> Payment {
        Payment {
            id: PaymentId(row.id),
            order: OrderId(row.order_id),
            attempt_no: row.attempt_no,
            state: row.state,
            amount_cents: row.amount_cents,
            idempotency_key: row.idempotency_key,
            processor_ref: row.processor_ref,
            failure_code: row.failure_code,
            fraud_review: row.fraud_review,
        }
    }
}

/// A payment from a row holding [`PAYMENT_COLUMNS`] (an insert's `RETURNING`, say).
pub(super) fn payment_from_row<'r, R: Row>(row: &'r R) -> Result<Payment>
where
    PaymentRow: FromRow<'r, R>,
{
    Ok(PaymentRow::from_row(row)?.into())
}

/// A refund's row ([`REFUNDS_OF_ORDER`]).
#[derive(Debug, FromRow)]
pub(super) struct RefundRow {
    order_id: i64,
    payment_id: i64,
    amount_cents: i64,
    state: String,
    reason: Option<String>,
    idempotency_key: String,
    processor_ref: Option<String>,
}

impl From<RefundRow> for Refund {
    fn from(row: RefundRow) -> Refund {
        Refund {
            order: OrderId(row.order_id),
            payment: PaymentId(row.payment_id),
            amount_cents: row.amount_cents,
            state: row.state,
            reason: row.reason,
            idempotency_key: row.idempotency_key,
            processor_ref: row.processor_ref,
        }
    }
}

/// Which parcels a shipment read selects.
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
    pub(super) fn filter(self) -> &'static str {
        match self {
            Parcels::Of(_) => "s.order_id = $1",
            Parcels::Id(_) => "s.id = $1",
            Parcels::Tracking(_) => {
                "s.id = (SELECT MAX(t.id) FROM shipments t WHERE t.tracking_number = $1)"
            }
        }
    }
}

/// Binds the parameter of [`Parcels::filter`]. A macro because the value's type
/// depends on the variant, and a query's `bind` needs each type's encoding.
macro_rules! bind_parcels {
    ($query:expr, $which:expr) => {
        match $which {
            $crate::store::decode::Parcels::Of(id) => $query.bind(id.0),
            $crate::store::decode::Parcels::Id(id) => $query.bind(id.0),
            $crate::store::decode::Parcels::Tracking(tracking) => $query.bind(tracking),
        }
    };
}
pub(super) use bind_parcels;

/// The parcels `which` selects ([`ShipmentRow`]s) in id order; PostgreSQL may append a
/// lock.
pub(super) fn select_shipments(which: Parcels<'_>) -> String {
    format!(
        "SELECT s.id, s.order_id, s.state, s.carrier, s.tracking_number, s.shipped_at, \
             s.delivered_at \
         FROM shipments s WHERE {} ORDER BY s.id",
        which.filter()
    )
}

/// A parcel's row, without its lines (they are read by a second statement).
#[derive(Debug, FromRow)]
pub(super) struct ShipmentRow {
    id: i64,
    order_id: i64,
    state: String,
    carrier: String,
    tracking_number: Option<String>,
    shipped_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<ShipmentRow> for Shipment {
    fn from(row: ShipmentRow) -> Shipment {
        Shipment {
            id: ShipmentId(row.id),
            order: OrderId(row.order_id),
            state: row.state,
            carrier: row.carrier,
            tracking_number: row.tracking_number,
            items: Vec::new(),
            shipped_at: row.shipped_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// Gives each parcel its lines, read as `(shipment id, order item id, quantity)` in
/// line id order; lines of parcels not in `shipments` are ignored.
pub(super) fn attach_lines(shipments: &mut [Shipment], lines: Vec<(i64, i64, i64)>) {
    for (shipment, item, quantity) in lines {
        if let Some(parcel) = shipments.iter_mut().find(|s| s.id.0 == shipment) {
            parcel.items.push((ItemId(item), quantity));
        }
    }
}

/// The columns of a new order row; each adapter inserts it in its own way (how the
/// next id and the order number are drawn differs).
#[derive(Debug)]
pub(super) struct NewOrderRow<'a> {
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
