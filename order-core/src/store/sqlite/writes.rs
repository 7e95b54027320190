//! The multi-statement writes of a transaction: order lines, parcels, a parcel's
//! transitions and the ledger.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use crate::error::StoreError;
use crate::store::entity::{self, SHIPMENT};
use crate::store::{Movement, NewEntityTransition, Result, statements};
use crate::types::{ItemId, OrderId, ProductId, ShipmentId};

use super::rows::refused;

/// Inserts order lines numbered 1..=n: `(product, quantity, unit price)`.
pub(super) async fn insert_items(
    conn: &mut SqliteConnection,
    order: OrderId,
    items: &[(i64, i64, i64)],
) -> Result<()> {
    for (line_no, (product, qty, price)) in (1_i64..).zip(items) {
        sqlx::query(
            "INSERT INTO order_items (order_id, line_no, product_id, quantity, \
                 unit_price_cents, qty_shipped, qty_returned) \
             VALUES (?, ?, ?, ?, ?, 0, 0)",
        )
        .bind(order.0)
        .bind(line_no)
        .bind(product)
        .bind(qty)
        .bind(price)
        .execute(&mut *conn)
        .await
        .map_err(|err| {
            refused(err, || {
                format!("cannot add line {line_no} (product {product}, quantity {qty})")
            })
        })?;
    }
    Ok(())
}

/// Writes one ledger row.
pub(super) async fn ledger(
    conn: &mut SqliteConnection,
    order: OrderId,
    product: ProductId,
    kind: Movement,
    delta_on_hand: i64,
    delta_reserved: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO inventory_movements \
             (product_id, order_id, kind, delta_on_hand, delta_reserved, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(product.0)
    .bind(order.0)
    .bind(kind.as_str())
    .bind(delta_on_hand)
    .bind(delta_reserved)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sums of one ledger column of an order's movements per product, non-zero ones only:
/// `sql` is [`statements::RESERVED_BY`] or [`statements::RESTOCKED_BY`].
pub(super) async fn ledger_sums(
    conn: &mut SqliteConnection,
    sql: &str,
    order: OrderId,
) -> Result<Vec<(ProductId, i64)>> {
    let sums: Vec<(i64, i64)> = sqlx::query_as(sql).bind(order.0).fetch_all(conn).await?;
    Ok(sums.into_iter().map(|(p, n)| (ProductId(p), n)).collect())
}

pub(super) async fn ship(
    conn: &mut SqliteConnection,
    order: OrderId,
    carrier: &str,
    tracking: Option<&str>,
    items: &[(ItemId, i64)],
    at: DateTime<Utc>,
) -> Result<ShipmentId> {
    if items.is_empty() {
        return Err(StoreError::Invalid(
            "a shipment needs at least one line".to_owned(),
        ));
    }
    let id: i64 = sqlx::query_scalar(statements::INSERT_SHIPMENT)
        .bind(order.0)
        .bind(carrier)
        .bind(tracking)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| refused(err, || format!("cannot ship order {order}")))?;
    for (item, qty) in items {
        let done = sqlx::query(statements::SHIP_LINE)
            .bind(qty)
            .bind(item.0)
            .bind(order.0)
            .execute(&mut *conn)
            .await
            .map_err(|err| refused(err, || format!("cannot ship {qty} of line {item}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "line {item} is not on order {order}"
            )));
        }
        sqlx::query(statements::INSERT_SHIPMENT_ITEM)
            .bind(id)
            .bind(item.0)
            .bind(qty)
            .execute(&mut *conn)
            .await
            .map_err(|err| refused(err, || format!("cannot ship {qty} of line {item}")))?;
    }
    Ok(ShipmentId(id))
}

/// A parcel's state change and its audit row; the caller runs it in a savepoint, so a
/// refused audit row takes the state change back with it. The state changes only from
/// `row.from`, on `row.order`, when `row.seq` follows the trail: otherwise nothing is
/// written and the refusal says which of those failed.
pub(super) async fn shipment_transition(
    conn: &mut SqliteConnection,
    row: &NewEntityTransition<'_>,
    metadata: &str,
) -> Result<()> {
    let moved = sqlx::query(
        "UPDATE shipments SET state = ?1, \
             delivered_at = CASE WHEN ?1 = 'delivered' THEN ?2 ELSE delivered_at END \
         WHERE id = ?3 AND order_id = ?4 AND state = ?5 \
           AND ?6 = (SELECT COALESCE(MAX(seq), 0) + 1 FROM entity_transitions \
                     WHERE machine = ?7 AND entity_id = ?3)",
    )
    .bind(row.to)
    .bind(row.at)
    .bind(row.entity)
    .bind(row.order.0)
    .bind(row.from)
    .bind(row.seq)
    .bind(SHIPMENT)
    .execute(&mut *conn)
    .await
    .map_err(|err| {
        refused(err, || {
            format!("cannot move shipment {} to `{}`", row.entity, row.to)
        })
    })?;
    if moved.rows_affected() == 0 {
        let found: entity::Found = sqlx::query_as(statements::SHIPMENT_FOUND)
            .bind(SHIPMENT)
            .bind(row.entity)
            .fetch_optional(&mut *conn)
            .await?;
        return Err(entity::shipment_refusal(row, found));
    }
    entity_transition(conn, row, metadata).await
}

/// Appends an audit row to a payment's or a shipment's trail.
pub(super) async fn entity_transition(
    conn: &mut SqliteConnection,
    row: &NewEntityTransition<'_>,
    metadata: &str,
) -> Result<()> {
    statements::insert_entity_transition!(row, metadata)
        .execute(conn)
        .await
        .map_err(|err| refused(err, || statements::audit_row_refused(row)))?;
    Ok(())
}

pub(super) async fn replace_lines(
    conn: &mut SqliteConnection,
    order: OrderId,
    items: &[(ProductId, i64, i64)],
) -> Result<()> {
    sqlx::query(statements::DELETE_ITEMS)
        .bind(order.0)
        .execute(&mut *conn)
        .await
        .map_err(|err| refused(err, || format!("cannot replace the lines of order {order}")))?;
    let lines: Vec<(i64, i64, i64)> = items
        .iter()
        .map(|(product, qty, price)| (product.0, *qty, *price))
        .collect();
    insert_items(&mut *conn, order, &lines).await
}

pub(super) async fn move_lines(
    conn: &mut SqliteConnection,
    items: &[ItemId],
    to: OrderId,
) -> Result<()> {
    for item in items {
        let done = sqlx::query(statements::MOVE_ITEM)
            .bind(to.0)
            .bind(item.0)
            .execute(&mut *conn)
            .await
            .map_err(|err| refused(err, || format!("cannot move line {item} to order {to}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no order line {item}")));
        }
    }
    Ok(())
}
