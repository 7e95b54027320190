//! The engine's write transaction on PostgreSQL.
//!
//! **Refusals leave the transaction usable**, as on SQLite, although PostgreSQL aborts
//! a transaction at its first failed statement: the writes of a transition
//! (`update_order`, `append_transition`, `enqueue`, `record_command`, `reserve`,
//! `write_shipment_transition`, `inbox_receive`) check
//! their rules inside the statement and answer "no row written" instead of raising, and
//! every other write that the schema may refuse runs inside a savepoint, rolled back
//! when refused. Any other error (a deadlock, a serialization failure, a lost
//! connection, a row that references nothing) leaves the transaction aborted: roll it
//! back.
//!
//! The trait methods are thin where the statements live elsewhere: one order's
//! transition in `transition.rs`, the shipment machine's and the inbox's in
//! `parcels.rs`, the multi-statement writes in `writes.rs`, the batched ones in
//! `bulk.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};

use crate::error::StoreError;
use crate::order::State;
use crate::store::{
    Movement, NewEntityTransition, NewMessage, NewPayment, NewTransition, Result, StoreTx,
    statements,
};
use crate::types::{
    EntityTransition, InboxMessage, ItemId, Order, OrderId, OrderItem, Payment, Product, ProductId,
    Refund, Shipment, ShipmentId,
};

use super::rows::{self, MapRefused as _};
use super::{parcels, transition, writes};

/// A READ COMMITTED transaction that locks the rows it reads for update (the order,
/// the products) until it ends; sqlx rolls back one dropped without commit.
#[derive(Debug)]
pub(super) struct PostgresTx {
    tx: Transaction<'static, Postgres>,
}

impl PostgresTx {
    pub(super) fn new(tx: Transaction<'static, Postgres>) -> PostgresTx {
        PostgresTx { tx }
    }

    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// Runs `$body`, a future using `$conn: &mut PgConnection`, inside a savepoint of
/// the transaction on `$on` (a `&mut PgConnection`): released on success, rolled back
/// on any error, so that a refused call leaves neither writes nor an aborted
/// transaction behind.
macro_rules! in_savepoint {
    ($on:expr, |$conn:ident| $body:expr) => {{
        let mut savepoint = sqlx::Connection::begin($on).await?;
        let result = {
            let $conn: &mut sqlx::postgres::PgConnection = &mut savepoint;
            $body.await
        };
        $crate::store::postgres::tx::finish(savepoint, result).await
    }};
}
pub(super) use in_savepoint;

/// Ends an `in_savepoint!` savepoint: releases it on success, rolls it back on error.
pub(super) async fn finish<T>(
    savepoint: Transaction<'_, Postgres>,
    result: Result<T>,
) -> Result<T> {
    match result {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = savepoint.rollback().await {
                tracing::warn!(%rollback, %err, "could not roll back to a savepoint");
            }
            Err(err)
        }
    }
}

#[async_trait]
impl StoreTx for PostgresTx {
    async fn command_outcome(&mut self, key: &str) -> Result<Option<String>> {
        transition::command_outcome(self.conn(), key).await
    }

    async fn record_command(
        &mut self,
        key: &str,
        order: OrderId,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        transition::record_command(self.conn(), key, order, outcome, at).await
    }

    async fn lock_order(&mut self, id: OrderId) -> Result<Option<Order>> {
        // `SELECT ... FOR UPDATE OF o`: a second transaction locking the order waits
        // here until this one ends, then reads the committed row.
        rows::order(self.conn(), id, true).await
    }

    async fn items(&mut self, id: OrderId) -> Result<Vec<OrderItem>> {
        rows::items(self.conn(), id).await
    }

    async fn update_order(&mut self, order: &Order, at: DateTime<Utc>) -> Result<bool> {
        transition::update_order(self.conn(), order, at).await
    }

    async fn last_seq(&mut self, id: OrderId) -> Result<i64> {
        transition::last_seq(self.conn(), id).await
    }

    async fn append_transition(&mut self, row: &NewTransition<'_>) -> Result<()> {
        transition::append_transition(self.conn(), row).await
    }

    async fn enqueue(&mut self, message: &NewMessage<'_>) -> Result<()> {
        transition::enqueue(self.conn(), message).await
    }

    async fn entered_at(&mut self, id: OrderId, state: State) -> Result<Option<DateTime<Utc>>> {
        transition::entered_at(self.conn(), id, state).await
    }

    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The rows are locked as they are returned, in id order: two transactions
        // locking overlapping sets never wait for each other in a cycle. `NO KEY`: the
        // lock an UPDATE of the counters takes, so lockers and writers of the product
        // take turns, while a new order line naming the product (whose foreign key
        // check takes `KEY SHARE`) does not wait for this transaction.
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let sql = format!(
            "SELECT {} FROM products WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            rows::PRODUCT_COLUMNS
        );
        let rows = sqlx::query(&sql).bind(&ids).fetch_all(self.conn()).await?;
        rows.iter().map(rows::product_from_row).collect()
    }

    async fn reserve(
        &mut self,
        order: OrderId,
        product: ProductId,
        qty: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        if qty < 0 {
            return Err(StoreError::Invalid(format!(
                "cannot reserve a negative quantity ({qty}) of product {product}"
            )));
        }
        if qty == 0 {
            return Ok(true);
        }
        // One statement: the conditional update and its ledger row. A concurrent
        // reservation of the product waits for this row and then re-checks the
        // condition against the committed counters (READ COMMITTED), so stock is
        // never oversold.
        let done = sqlx::query(
            "WITH reserved AS ( \
                 UPDATE products SET reserved = reserved + $1 \
                 WHERE id = $2 AND on_hand - reserved >= $1 RETURNING id) \
             INSERT INTO inventory_movements \
                 (product_id, order_id, kind, delta_on_hand, delta_reserved, created_at) \
             SELECT id, $3, 'reserve', 0, $1, $4 FROM reserved",
        )
        .bind(qty)
        .bind(product.0)
        .bind(order.0)
        .bind(at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn move_stock(
        &mut self,
        order: OrderId,
        product: ProductId,
        kind: Movement,
        qty: i64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        if qty < 0 && kind != Movement::Adjust {
            return Err(StoreError::Invalid(format!(
                "a {} of product {product} needs a positive quantity, got {qty}",
                kind.as_str()
            )));
        }
        if qty == 0 {
            return Ok(());
        }
        let (delta_on_hand, delta_reserved) = match kind {
            Movement::Reserve => {
                return if self.reserve(order, product, qty, at).await? {
                    Ok(())
                } else {
                    Err(StoreError::Invalid(format!(
                        "cannot reserve {qty} of product {product}: not enough available"
                    )))
                };
            }
            Movement::Release => (0, -qty),
            Movement::Ship => (-qty, -qty),
            Movement::Restock | Movement::Adjust => (qty, 0),
        };
        let moved: Option<i64> = in_savepoint!(self.conn(), |conn| {
            sqlx::query_scalar(
                "WITH moved AS ( \
                     UPDATE products SET on_hand = on_hand + $1, reserved = reserved + $2 \
                     WHERE id = $3 RETURNING id) \
                 INSERT INTO inventory_movements \
                     (product_id, order_id, kind, delta_on_hand, delta_reserved, created_at) \
                 SELECT id, $4, $5, $1, $2, $6 FROM moved RETURNING product_id",
            )
            .bind(delta_on_hand)
            .bind(delta_reserved)
            .bind(product.0)
            .bind(order.0)
            .bind(kind.as_str())
            .bind(at)
            .fetch_optional(conn)
            .map_err_refused(move || {
                format!(
                    "a {} of {qty} would break the stock counters of product {product}",
                    kind.as_str()
                )
            })
        })?;
        if moved.is_none() {
            return Err(StoreError::Invalid(format!("no product {product}")));
        }
        Ok(())
    }

    async fn reserved_by(&mut self, order: OrderId) -> Result<Vec<(ProductId, i64)>> {
        writes::ledger_sums(self.conn(), statements::RESERVED_BY, order).await
    }

    async fn restocked_by(&mut self, order: OrderId) -> Result<Vec<(ProductId, i64)>> {
        writes::ledger_sums(self.conn(), statements::RESTOCKED_BY, order).await
    }

    async fn payments(&mut self, order: OrderId) -> Result<Vec<Payment>> {
        rows::payments(self.conn(), order).await
    }

    async fn payments_by_reference(&mut self, reference: &str) -> Result<Vec<Payment>> {
        rows::payments_by_reference(self.conn(), reference).await
    }

    async fn insert_payment(&mut self, payment: &NewPayment<'_>) -> Result<Payment> {
        let sql = statements::insert_payment(rows::PAYMENT_COLUMNS);
        let row = in_savepoint!(self.conn(), |conn| {
            sqlx::query(&sql)
                .bind(payment.order.0)
                .bind(payment.amount_cents)
                .bind(payment.idempotency_key)
                .bind(payment.at)
                .fetch_one(conn)
                .map_err_refused(|| format!("cannot add a payment to order {}", payment.order))
        })?;
        rows::payment_from_row(&row)
    }

    async fn update_payment(&mut self, payment: &Payment, at: DateTime<Utc>) -> Result<()> {
        let done = in_savepoint!(self.conn(), |conn| {
            statements::update_payment!(payment, at)
                .execute(conn)
                .map_err_refused(|| format!("cannot write payment {}", payment.id))
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no payment {}", payment.id)));
        }
        Ok(())
    }

    async fn refunds(&mut self, order: OrderId) -> Result<Vec<Refund>> {
        rows::refunds(self.conn(), order).await
    }

    async fn insert_refund(&mut self, refund: &Refund, at: DateTime<Utc>) -> Result<()> {
        in_savepoint!(self.conn(), |conn| {
            statements::insert_refund!(refund, at)
                .execute(conn)
                .map_err_refused(|| {
                    format!(
                        "cannot refund {} of payment {}",
                        refund.amount_cents, refund.payment
                    )
                })
        })?;
        Ok(())
    }

    async fn update_refund_state(&mut self, key: &str, state: &str) -> Result<()> {
        let done = in_savepoint!(self.conn(), |conn| {
            sqlx::query(statements::UPDATE_REFUND_STATE)
                .bind(state)
                .bind(key)
                .execute(conn)
                .map_err_refused(|| format!("cannot move refund `{key}` to `{state}`"))
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no refund `{key}`")));
        }
        Ok(())
    }

    async fn shipments(&mut self, order: OrderId) -> Result<Vec<Shipment>> {
        rows::shipments(self.conn(), order).await
    }

    async fn insert_shipment(
        &mut self,
        order: OrderId,
        carrier: &str,
        tracking: Option<&str>,
        items: &[(ItemId, i64)],
        at: DateTime<Utc>,
    ) -> Result<ShipmentId> {
        in_savepoint!(self.conn(), |conn| writes::ship(
            conn, order, carrier, tracking, items, at
        ))
    }

    async fn set_returned(&mut self, item: ItemId, qty_returned: i64) -> Result<()> {
        let done = in_savepoint!(self.conn(), |conn| {
            sqlx::query(statements::SET_RETURNED)
                .bind(qty_returned)
                .bind(item.0)
                .execute(conn)
                .map_err_refused(|| format!("cannot mark {qty_returned} of line {item} returned"))
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no order line {item}")));
        }
        Ok(())
    }

    async fn set_shipped(&mut self, item: ItemId, qty_shipped: i64) -> Result<()> {
        parcels::set_shipped(self.conn(), item, qty_shipped).await
    }

    async fn lock_shipment(&mut self, id: ShipmentId) -> Result<Option<Shipment>> {
        parcels::lock_shipment(self.conn(), id).await
    }

    async fn shipment_by_tracking(&mut self, tracking: &str) -> Result<Option<Shipment>> {
        parcels::shipment_by_tracking(self.conn(), tracking).await
    }

    async fn write_shipment_transition(&mut self, row: &NewEntityTransition<'_>) -> Result<()> {
        parcels::write_shipment_transition(self.conn(), row).await
    }

    async fn append_entity_transition(&mut self, row: &NewEntityTransition<'_>) -> Result<()> {
        in_savepoint!(self.conn(), |conn| {
            statements::insert_entity_transition!(row, row.metadata)
                .execute(conn)
                .map_err_refused(|| statements::audit_row_refused(row))
        })?;
        Ok(())
    }

    async fn entity_trail(&mut self, machine: &str, entity: i64) -> Result<Vec<EntityTransition>> {
        rows::entity_trail(self.conn(), machine, entity).await
    }

    async fn inbox_receive(
        &mut self,
        source: &str,
        external_id: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        parcels::inbox_receive(self.conn(), source, external_id, payload, at).await
    }

    async fn inbox_pending(&mut self, source: &str, limit: i64) -> Result<Vec<InboxMessage>> {
        parcels::inbox_pending(self.conn(), source, limit).await
    }

    async fn inbox_done(
        &mut self,
        source: &str,
        external_id: &str,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        parcels::inbox_done(self.conn(), source, external_id, outcome, at).await
    }

    async fn replace_items(
        &mut self,
        order: OrderId,
        items: &[(ProductId, i64, i64)],
    ) -> Result<()> {
        in_savepoint!(self.conn(), |conn| writes::replace_lines(
            conn, order, items
        ))
    }

    async fn move_items(&mut self, items: &[ItemId], to: OrderId) -> Result<()> {
        in_savepoint!(self.conn(), |conn| writes::move_lines(conn, items, to))
    }

    async fn insert_child_order(
        &mut self,
        parent: &Order,
        state: State,
        at: DateTime<Utc>,
    ) -> Result<Order> {
        let row = rows::NewOrderRow {
            customer: parent.customer,
            state,
            parent: Some(parent.id),
            currency: &parent.currency,
            total_cents: 0,
            payment_status: parent.payment_status,
            fulfillment_status: parent.fulfillment_status,
            shipping_address: parent.shipping_address.as_deref(),
            at,
        };
        let id = in_savepoint!(self.conn(), |conn| rows::insert_order(conn, &row))?;
        rows::order(self.conn(), id, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {id} vanished while created")))
    }

    async fn add_note(
        &mut self,
        order: OrderId,
        author: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        in_savepoint!(self.conn(), |conn| {
            sqlx::query(statements::INSERT_NOTE)
                .bind(order.0)
                .bind(author)
                .bind(body)
                .bind(at)
                .execute(conn)
                .map_err_refused(|| format!("cannot add a note to order {order}"))
        })
        .map(|_| ())
    }

    async fn write_transition(
        &mut self,
        order: &Order,
        row: &NewTransition<'_>,
        messages: &[NewMessage<'_>],
        at: DateTime<Utc>,
    ) -> Result<bool> {
        super::bulk::write_transition(self.conn(), order, row, messages, at).await
    }

    async fn stock(&mut self, ids: &[ProductId]) -> Result<Vec<Product>> {
        super::bulk::stock(self.conn(), ids).await
    }

    async fn reserve_all(
        &mut self,
        order: OrderId,
        wanted: &[(ProductId, i64)],
        at: DateTime<Utc>,
    ) -> Result<Option<ProductId>> {
        super::bulk::reserve_all(self.conn(), order, wanted, at).await
    }

    async fn lock_orders(&mut self, ids: &[OrderId]) -> Result<Vec<Order>> {
        super::bulk::lock_orders(self.conn(), ids).await
    }

    async fn items_of(&mut self, ids: &[OrderId]) -> Result<Vec<OrderItem>> {
        super::bulk::items_of(self.conn(), ids).await
    }

    async fn lock_for_transition(
        &mut self,
        id: OrderId,
    ) -> Result<Option<(Order, crate::store::TransitionReads)>> {
        super::bulk::lock_for_transition(self.conn(), id).await
    }

    async fn transition_reads(&mut self, id: OrderId) -> Result<crate::store::TransitionReads> {
        super::bulk::transition_reads(self.conn(), id).await
    }

    async fn last_seqs(&mut self, ids: &[OrderId]) -> Result<Vec<(OrderId, i64)>> {
        super::bulk::last_seqs(self.conn(), ids).await
    }

    async fn update_orders(&mut self, orders: &[Order], at: DateTime<Utc>) -> Result<Vec<OrderId>> {
        super::bulk::update_orders(self.conn(), orders, at).await
    }

    async fn append_transitions(&mut self, rows: &[NewTransition<'_>]) -> Result<()> {
        super::bulk::append_transitions(self.conn(), rows).await
    }

    async fn enqueue_all(&mut self, messages: &[NewMessage<'_>]) -> Result<()> {
        super::bulk::enqueue_all(self.conn(), messages).await
    }

    async fn savepoint(&mut self) -> Result<()> {
        sqlx::query(statements::SAVEPOINT)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn release_savepoint(&mut self) -> Result<()> {
        sqlx::query(statements::RELEASE_SAVEPOINT)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self) -> Result<()> {
        sqlx::query(statements::ROLLBACK_TO_SAVEPOINT)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
