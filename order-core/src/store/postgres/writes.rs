//! The multi-statement writes of a transaction: order lines, parcels and the ledger.
//! Callers run each inside a savepoint, so that a refused call leaves nothing behind.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use crate::error::StoreError;
use crate::store::{Result, statements};
use crate::types::{ItemId, OrderId, ProductId, ShipmentId};

use super::rows::refused;

/// Inserts order lines numbered 1..=n, `(product, quantity, unit price)`, in one
/// statement.
pub(super) async fn insert_items(
    conn: &mut PgConnection,
    order: OrderId,
    items: &[(i64, i64, i64)],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let line_nos: Vec<i64> = (1..).take(items.len()).collect();
    let products: Vec<i64> = items.iter().map(|(product, _, _)| *product).collect();
    let quantities: Vec<i64> = items.iter().map(|(_, qty, _)| *qty).collect();
    let prices: Vec<i64> = items.iter().map(|(_, _, price)| *price).collect();
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, product_id, quantity, \
             unit_price_cents, qty_shipped, qty_returned) \
         SELECT $1, line_no, product_id, quantity, unit_price_cents, 0, 0 \
         FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[]) \
             AS line (line_no, product_id, quantity, unit_price_cents) \
         ORDER BY line_no",
    )
    .bind(order.0)
    .bind(&line_nos)
    .bind(&products)
    .bind(&quantities)
    .bind(&prices)
    .execute(conn)
    .await
    .map_err(|err| refused(err, || format!("cannot add the lines of order {order}")))?;
    Ok(())
}

/// Sums of one ledger column of an order's movements per product, non-zero ones only:
/// `sql` is [`statements::RESERVED_BY`] or [`statements::RESTOCKED_BY`].
pub(super) async fn ledger_sums(
    conn: &mut PgConnection,
    sql: &str,
    order: OrderId,
) -> Result<Vec<(ProductId, i64)>> {
    let sums: Vec<(i64, i64)> = sqlx::query_as(sql).bind(order.0).fetch_all(conn).await?;
    Ok(sums.into_iter().map(|(p, n)| (ProductId(p), n)).collect())
}

pub(super) async fn ship(
    conn: &mut PgConnection,
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

pub(super) async fn replace_lines(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
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
