//! The engine's write transaction on SQLite.
//!
//! The trait methods are thin where the statements live elsewhere: one order's
//! transition in `transition.rs`, the shipment machine's and the inbox's in
//! `parcels.rs`, the multi-statement writes in `writes.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::error::StoreError;
use crate::order::State;
use crate::store::decode::PAYMENT_COLUMNS;
use crate::store::{
    Movement, NewEntityTransition, NewMessage, NewPayment, NewTransition, Result, StoreTx,
    statements,
};
use crate::types::{
    EntityTransition, InboxMessage, ItemId, Order, OrderId, OrderItem, Payment, Product, ProductId,
    Refund, Shipment, ShipmentId,
};

use super::rows::{self, refused};
use super::{parcels, transition, writes};

/// A `BEGIN IMMEDIATE` transaction: it holds the database's write lock until it commits
/// or rolls back (sqlx rolls back a transaction dropped without either).
#[derive(Debug)]
pub(super) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteTx {
    pub(super) fn new(tx: Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx { tx }
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

#[async_trait]
impl StoreTx for SqliteTx {
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
        // `BEGIN IMMEDIATE` already holds the write lock: nobody else writes until commit.
        rows::order(self.conn(), id).await
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
        // Writers are serialized by `BEGIN IMMEDIATE`; no row locks to take.
        let mut builder = QueryBuilder::new(format!(
            "SELECT {} FROM products WHERE id IN (",
            rows::PRODUCT_COLUMNS
        ));
        let mut list = builder.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        builder.push(") ORDER BY id");
        let rows = builder.build().fetch_all(self.conn()).await?;
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
        let done = sqlx::query(
            "UPDATE products SET reserved = reserved + ? WHERE id = ? AND on_hand - reserved >= ?",
        )
        .bind(qty)
        .bind(product.0)
        .bind(qty)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        writes::ledger(self.conn(), order, product, Movement::Reserve, 0, qty, at).await?;
        Ok(true)
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
        let done = sqlx::query(
            "UPDATE products SET on_hand = on_hand + ?, reserved = reserved + ? WHERE id = ?",
        )
        .bind(delta_on_hand)
        .bind(delta_reserved)
        .bind(product.0)
        .execute(self.conn())
        .await
        .map_err(|err| {
            refused(err, || {
                format!(
                    "a {} of {qty} would break the stock counters of product {product}",
                    kind.as_str()
                )
            })
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no product {product}")));
        }
        writes::ledger(
            self.conn(),
            order,
            product,
            kind,
            delta_on_hand,
            delta_reserved,
            at,
        )
        .await
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
        let sql = statements::insert_payment(PAYMENT_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(payment.order.0)
            .bind(payment.amount_cents)
            .bind(payment.idempotency_key)
            .bind(payment.at)
            .fetch_one(self.conn())
            .await
            .map_err(|err| {
                refused(err, || {
                    format!("cannot add a payment to order {}", payment.order)
                })
            })?;
        rows::payment_from_row(&row)
    }

    async fn update_payment(&mut self, payment: &Payment, at: DateTime<Utc>) -> Result<()> {
        let done = statements::update_payment!(payment, at)
            .execute(self.conn())
            .await
            .map_err(|err| refused(err, || format!("cannot write payment {}", payment.id)))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no payment {}", payment.id)));
        }
        Ok(())
    }

    async fn refunds(&mut self, order: OrderId) -> Result<Vec<Refund>> {
        rows::refunds(self.conn(), order).await
    }

    async fn insert_refund(&mut self, refund: &Refund, at: DateTime<Utc>) -> Result<()> {
        statements::insert_refund!(refund, at)
            .execute(self.conn())
            .await
            .map_err(|err| {
                refused(err, || {
                    format!(
                        "cannot refund {} of payment {}",
                        refund.amount_cents, refund.payment
                    )
                })
            })?;
        Ok(())
    }

    async fn update_refund_state(&mut self, key: &str, state: &str) -> Result<()> {
        let done = sqlx::query(statements::UPDATE_REFUND_STATE)
            .bind(state)
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(|err| refused(err, || format!("cannot move refund `{key}` to `{state}`")))?;
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
        let mut savepoint = sqlx::Connection::begin(self.conn()).await?;
        let id = writes::ship(&mut savepoint, order, carrier, tracking, items, at).await?;
        savepoint.commit().await?;
        Ok(id)
    }

    async fn set_returned(&mut self, item: ItemId, qty_returned: i64) -> Result<()> {
        let done = sqlx::query(statements::SET_RETURNED)
            .bind(qty_returned)
            .bind(item.0)
            .execute(self.conn())
            .await
            .map_err(|err| {
                refused(err, || {
                    format!("cannot mark {qty_returned} of line {item} returned")
                })
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
        let metadata = rows::json_text(row.metadata)?;
        writes::entity_transition(self.conn(), row, &metadata).await
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
        let mut savepoint = sqlx::Connection::begin(self.conn()).await?;
        writes::replace_lines(&mut savepoint, order, items).await?;
        savepoint.commit().await?;
        Ok(())
    }

    async fn move_items(&mut self, items: &[ItemId], to: OrderId) -> Result<()> {
        let mut savepoint = sqlx::Connection::begin(self.conn()).await?;
        writes::move_lines(&mut savepoint, items, to).await?;
        savepoint.commit().await?;
        Ok(())
    }

    async fn insert_child_order(
        &mut self,
        parent: &Order,
        state: State,
        at: DateTime<Utc>,
    ) -> Result<Order> {
        let id = rows::insert_order(
            self.conn(),
            &rows::NewOrderRow {
                customer: parent.customer,
                state,
                parent: Some(parent.id),
                currency: &parent.currency,
                total_cents: 0,
                payment_status: parent.payment_status,
                fulfillment_status: parent.fulfillment_status,
                shipping_address: parent.shipping_address.as_deref(),
                at,
            },
        )
        .await?;
        rows::order(self.conn(), id)
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
        sqlx::query(statements::INSERT_NOTE)
            .bind(order.0)
            .bind(author)
            .bind(body)
            .bind(at)
            .execute(self.conn())
            .await
            .map_err(|err| refused(err, || format!("cannot add a note to order {order}")))?;
        Ok(())
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
