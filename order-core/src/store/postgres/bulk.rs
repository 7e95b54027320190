//! The batched reads and writes of bulk operations: one statement for many orders,
//! with arrays bound as parameters (`= ANY($1)`, `UNNEST`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgConnection;

use super::rows;
use crate::store::{NewMessage, NewTransition, Result};
use crate::types::{Order, OrderId, OrderItem};

fn ids_of(ids: &[OrderId]) -> Vec<i64> {
    ids.iter().map(|id| id.0).collect()
}

/// The orders, locked in id order (`FOR UPDATE OF o` takes the rows as it meets them).
pub(super) async fn lock_orders(conn: &mut PgConnection, ids: &[OrderId]) -> Result<Vec<Order>> {
    let sql = format!(
        "{} WHERE o.id = ANY($1) ORDER BY o.id FOR UPDATE OF o",
        rows::select_orders("")
    );
    let found = sqlx::query(&sql).bind(ids_of(ids)).fetch_all(conn).await?;
    found.iter().map(rows::order_from_row).collect()
}

pub(super) async fn items_of(conn: &mut PgConnection, ids: &[OrderId]) -> Result<Vec<OrderItem>> {
    rows::items_where(conn, "i.order_id = ANY($1)", ids_of(ids)).await
}

pub(super) async fn last_seqs(
    conn: &mut PgConnection,
    ids: &[OrderId],
) -> Result<Vec<(OrderId, i64)>> {
    let found = sqlx::query(
        "SELECT u.id, COALESCE(MAX(t.seq), 0) AS seq \
         FROM UNNEST($1::bigint[]) AS u(id) \
         LEFT JOIN order_transitions t ON t.order_id = u.id \
         GROUP BY u.id",
    )
    .bind(ids_of(ids))
    .fetch_all(conn)
    .await?;
    found
        .iter()
        .map(|row| Ok((OrderId(row.try_get("id")?), row.try_get("seq")?)))
        .collect()
}

/// Compare-and-set of many order rows in one statement; the ids whose version moved.
pub(super) async fn update_orders(
    conn: &mut PgConnection,
    orders: &[Order],
    at: DateTime<Utc>,
) -> Result<Vec<OrderId>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let written = sqlx::query(
        "UPDATE orders o SET state = u.state, payment_status = u.payment_status, \
             fulfillment_status = u.fulfillment_status, shipping_address = u.address, \
             total_cents = u.total, version = o.version + 1, updated_at = $8 \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::bigint[], $7::bigint[]) \
              AS u(id, state, payment_status, fulfillment_status, address, total, version) \
         WHERE o.id = u.id AND o.version = u.version \
         RETURNING o.id",
    )
    .bind(orders.iter().map(|o| o.id.0).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.state.as_str()).collect::<Vec<_>>())
    .bind(
        orders
            .iter()
            .map(|o| o.payment_status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        orders
            .iter()
            .map(|o| o.fulfillment_status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        orders
            .iter()
            .map(|o| o.shipping_address.clone())
            .collect::<Vec<_>>(),
    )
    .bind(orders.iter().map(|o| o.total_cents).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.version).collect::<Vec<_>>())
    .bind(at)
    .fetch_all(conn)
    .await?;
    let written: HashMap<i64, ()> = written
        .iter()
        .filter_map(|row| row.try_get::<i64, _>("id").ok())
        .map(|id| (id, ()))
        .collect();
    Ok(orders
        .iter()
        .filter(|o| !written.contains_key(&o.id.0))
        .map(|o| o.id)
        .collect())
}

pub(super) async fn append_transitions(
    conn: &mut PgConnection,
    rows: &[NewTransition<'_>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
             actor_kind, actor_id, reason, note, is_override, machine_hash, \
             idempotency_key, metadata, created_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], \
             $11::text[], $12::text[], $13::jsonb[], $14::timestamptz[])",
    )
    .bind(rows.iter().map(|r| r.order.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.from.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.to.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.actor_kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.actor_id).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.reason.map(|x| x.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.note).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.is_override).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.machine_hash).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.idempotency_key).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.metadata.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn enqueue_all(
    conn: &mut PgConnection,
    messages: &[NewMessage<'_>],
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (aggregate_id, kind, payload, dedupe_key, created_at, \
             delivered_at, attempts, next_attempt_at, last_error) \
         SELECT m.aggregate, m.kind, m.payload, m.dedupe_key, m.at, NULL, 0, m.at, NULL \
         FROM UNNEST($1::bigint[], $2::text[], $3::jsonb[], $4::text[], $5::timestamptz[]) \
              AS m(aggregate, kind, payload, dedupe_key, at)",
    )
    .bind(messages.iter().map(|m| m.aggregate.0).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.kind).collect::<Vec<_>>())
    .bind(
        messages
            .iter()
            .map(|m| m.payload.clone())
            .collect::<Vec<_>>(),
    )
    .bind(messages.iter().map(|m| m.dedupe_key).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.at).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Step 8 in one round trip: the order's compare-and-set, and only when it wrote, the
/// audit row and the outbox rows (data-modifying CTEs that read the update's result).
pub(super) async fn write_transition(
    conn: &mut PgConnection,
    order: &Order,
    row: &NewTransition<'_>,
    messages: &[NewMessage<'_>],
    at: DateTime<Utc>,
) -> Result<bool> {
    if order.total_cents < 0 {
        return Err(crate::error::StoreError::Invalid(format!(
            "cannot write order {}: the total cannot be negative, got {}",
            order.id, order.total_cents
        )));
    }
    let written: i64 = sqlx::query_scalar(
        "WITH u AS ( \
             UPDATE orders SET state = $1, payment_status = $2, fulfillment_status = $3, \
                 shipping_address = $4, total_cents = $5, version = version + 1, \
                 updated_at = $6 \
             WHERE id = $7 AND version = $8 RETURNING id \
         ), t AS ( \
             INSERT INTO order_transitions (order_id, seq, event, from_state, to_state, \
                 actor_kind, actor_id, reason, note, is_override, machine_hash, \
                 idempotency_key, metadata, created_at) \
             SELECT u.id, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21 \
             FROM u RETURNING order_id \
         ), m AS ( \
             INSERT INTO outbox (aggregate_id, kind, payload, dedupe_key, created_at, \
                 delivered_at, attempts, next_attempt_at, last_error) \
             SELECT u.id, x.kind, x.payload, x.dedupe_key, x.at, NULL, 0, x.at, NULL \
             FROM u, UNNEST($22::text[], $23::jsonb[], $24::text[], $25::timestamptz[]) \
                  AS x(kind, payload, dedupe_key, at) \
             RETURNING aggregate_id \
         ) \
         SELECT COUNT(*) FROM u",
    )
    .bind(order.state.as_str())
    .bind(order.payment_status.as_str())
    .bind(order.fulfillment_status.as_str())
    .bind(order.shipping_address.as_deref())
    .bind(order.total_cents)
    .bind(at)
    .bind(order.id.0)
    .bind(order.version)
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
    .bind(messages.iter().map(|m| m.kind).collect::<Vec<_>>())
    .bind(
        messages
            .iter()
            .map(|m| m.payload.clone())
            .collect::<Vec<_>>(),
    )
    .bind(messages.iter().map(|m| m.dedupe_key).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.at).collect::<Vec<_>>())
    .fetch_one(conn)
    .await
    .map_err(|err| {
        rows::refused(err, || {
            format!("cannot write the transition of order {}", order.id)
        })
    })?;
    Ok(written == 1)
}

/// The subqueries of a transition's reads of order `$1`: its last sequence number, and
/// its lines with their products (unlocked) as a JSON array in line order.
const READS: &str = "(SELECT COALESCE(MAX(seq), 0) FROM order_transitions WHERE order_id = $1) \
         AS last_seq, \
     (SELECT COALESCE(json_agg(json_build_array(i.id, i.line_no, i.product_id, p.sku, \
          i.quantity, i.unit_price_cents, i.qty_shipped, i.qty_returned, p.name, \
          p.price_cents, p.on_hand, p.reserved) ORDER BY i.line_no), '[]') \
      FROM order_items i JOIN products p ON p.id = i.product_id \
      WHERE i.order_id = $1) AS lines";

/// The order locked and a transition's reads, in one round trip. The reads see the
/// statement's snapshot; when the lock had to wait for a transaction that changed the
/// order meanwhile, the locked row is newer than that snapshot (its version differs
/// from the one the snapshot saw), and the reads are made again after the lock. Every
/// change to an order's lines or audit trail bumps its version.
pub(super) async fn lock_for_transition(
    conn: &mut PgConnection,
    id: OrderId,
) -> Result<Option<(Order, crate::store::TransitionReads)>> {
    let sql = format!(
        "SELECT {}, (SELECT version FROM orders WHERE id = $1) AS seen_version, {READS} \
         FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.id = $1 FOR UPDATE OF o",
        rows::ORDER_COLUMNS
    );
    let Some(row) = sqlx::query(&sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let order = rows::order_from_row(&row)?;
    let seen: i64 = row.try_get("seen_version")?;
    if seen != order.version {
        let reads = transition_reads(conn, id).await?;
        return Ok(Some((order, reads)));
    }
    Ok(Some((order, reads_from_row(&row, id)?)))
}

/// A transition's reads in one round trip: the order's lines with their products
/// (unlocked) and its last sequence number.
pub(super) async fn transition_reads(
    conn: &mut PgConnection,
    id: OrderId,
) -> Result<crate::store::TransitionReads> {
    let row = sqlx::query(&format!("SELECT {READS}"))
        .bind(id.0)
        .fetch_one(conn)
        .await?;
    reads_from_row(&row, id)
}

/// The reads of `READS`' columns.
fn reads_from_row(
    row: &sqlx::postgres::PgRow,
    id: OrderId,
) -> Result<crate::store::TransitionReads> {
    type Line = (
        i64,
        i64,
        i64,
        String,
        i64,
        i64,
        i64,
        i64,
        String,
        i64,
        i64,
        i64,
    );
    let sqlx::types::Json(lines): sqlx::types::Json<Vec<Line>> = row.try_get("lines")?;
    let mut items = Vec::with_capacity(lines.len());
    let mut stock: Vec<crate::types::Product> = Vec::new();
    for (
        item,
        line_no,
        product,
        sku,
        quantity,
        price,
        shipped,
        returned,
        name,
        list,
        on_hand,
        reserved,
    ) in lines
    {
        let product = crate::types::ProductId(product);
        if !stock.iter().any(|p| p.id == product) {
            stock.push(crate::types::Product {
                id: product,
                sku: sku.clone(),
                name,
                price_cents: list,
                on_hand,
                reserved,
            });
        }
        items.push(OrderItem {
            id: crate::types::ItemId(item),
            order: id,
            line_no,
            product,
            sku,
            quantity,
            unit_price_cents: price,
            qty_shipped: shipped,
            qty_returned: returned,
        });
    }
    Ok(crate::store::TransitionReads {
        items,
        last_seq: row.try_get("last_seq")?,
        stock: Some(stock),
    })
}

/// The products without a lock.
pub(super) async fn stock(
    conn: &mut PgConnection,
    ids: &[crate::types::ProductId],
) -> Result<Vec<crate::types::Product>> {
    let found = sqlx::query(
        "SELECT id, sku, name, price_cents, on_hand, reserved FROM products \
         WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids.iter().map(|p| p.0).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    found.iter().map(rows::product_from_row).collect()
}

/// Every reservation of an order in one statement: the rows locked in id order, each
/// updated only where the stock suffices, with its ledger row; the first product that
/// fell short, if one did.
pub(super) async fn reserve_all(
    conn: &mut PgConnection,
    order: OrderId,
    wanted: &[(crate::types::ProductId, i64)],
    at: DateTime<Utc>,
) -> Result<Option<crate::types::ProductId>> {
    if wanted.iter().any(|(_, q)| *q < 0) {
        return Err(crate::error::StoreError::Invalid(format!(
            "cannot reserve a negative quantity for order {order}"
        )));
    }
    let short: Option<i64> = sqlx::query_scalar(
        "WITH want AS ( \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[]) AS w(id, qty) WHERE qty > 0 \
         ), locked AS ( \
             SELECT p.id FROM products p WHERE p.id IN (SELECT id FROM want) \
             ORDER BY p.id FOR NO KEY UPDATE \
         ), upd AS ( \
             UPDATE products p SET reserved = p.reserved + w.qty FROM want w \
             WHERE p.id = w.id AND p.id IN (SELECT id FROM locked) \
               AND p.on_hand - p.reserved >= w.qty \
             RETURNING p.id, w.qty \
         ), ledger AS ( \
             INSERT INTO inventory_movements \
                 (product_id, order_id, kind, delta_on_hand, delta_reserved, created_at) \
             SELECT id, $3, 'reserve', 0, qty, $4 FROM upd RETURNING product_id \
         ) \
         SELECT MIN(w.id) FROM want w WHERE w.id NOT IN (SELECT id FROM upd)",
    )
    .bind(wanted.iter().map(|(p, _)| p.0).collect::<Vec<_>>())
    .bind(wanted.iter().map(|(_, q)| *q).collect::<Vec<_>>())
    .bind(order.0)
    .bind(at)
    .fetch_one(conn)
    .await?;
    Ok(short.map(crate::types::ProductId))
}
