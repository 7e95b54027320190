//! The SQLite adapter: the embedded default (`sqlite://orders.db`), and
//! `sqlite::memory:` in tests.
//!
//! - Files are opened in WAL mode with `synchronous = NORMAL`, foreign keys on and a
//!   30 s busy timeout, so that many writers queue rather than fail.
//! - A write transaction is `BEGIN IMMEDIATE`: it takes the database's write lock up
//!   front, so a transaction that reads and then writes never fails to upgrade its lock,
//!   and writers are serialized (SQLite's equivalent of locking the order's row).
//! - `sqlite::memory:` is one database per `connect`, served by a single connection:
//!   callers must not hold a transaction and use the store's own reads at the same time
//!   (the second waits for the connection).

mod parcels;
mod query;
mod rows;
mod transition;
mod tx;
mod verify;
mod writes;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_migrations;
#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_tx;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::StoreError;
use crate::order::{ActorKind, State};
use crate::query::OrderQuery;
use crate::store::{Movement, Result, Store, StoreTx};
use crate::types::{
    Attempt, EntityTransition, InboxMessage, NewOrder, Order, OrderId, OrderItem, OutboxMessage,
    Payment, Product, Refund, Shipment, Staff, TransitionRecord,
};
use crate::verify::Finding;

use rows::refused;

/// How long a statement waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections to a database file: readers run in parallel (WAL), writers queue.
const MAX_CONNECTIONS: u32 = 16;

/// A SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (relative or absolute, created when missing) or
    /// `sqlite::memory:` (a fresh database). Does not migrate: see [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        let pool = if is_memory(url) {
            // sqlx names each `:memory:` database uniquely (shared cache); one connection
            // that is never retired keeps it alive and makes every caller see it.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(
                    options
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal),
                )
                .await?
        };
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for tests and benchmarks that issue SQL directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction: `BEGIN IMMEDIATE`.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        // Under the write lock, so that processes migrating one file at once take turns
        // (sqlx's migration lock is a no-op on SQLite); each migration is a savepoint.
        // `run_direct` is `run` on a connection, minus the `Acquire` bound that an
        // `async_trait` future cannot prove `Send` for.
        let mut tx = self.write().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run_direct(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        Ok(Box::new(tx::SqliteTx::new(self.write().await?)))
    }

    async fn add_product(
        &self,
        sku: &str,
        name: &str,
        price_cents: i64,
        on_hand: i64,
    ) -> Result<Product> {
        if price_cents < 0 {
            return Err(StoreError::Invalid(format!(
                "the price of `{sku}` cannot be negative, got {price_cents}"
            )));
        }
        if on_hand < 0 {
            return Err(StoreError::Invalid(format!(
                "the stock of `{sku}` cannot be negative, got {on_hand}"
            )));
        }
        let mut tx = self.write().await?;
        let sql = format!(
            "INSERT INTO products (sku, name, price_cents, on_hand, reserved) \
             VALUES (?, ?, ?, ?, 0) RETURNING {}",
            rows::PRODUCT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(sku)
            .bind(name)
            .bind(price_cents)
            .bind(on_hand)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| refused(err, || format!("cannot add product `{sku}`")))?;
        let product = rows::product_from_row(&row)?;
        if on_hand != 0 {
            sqlx::query(
                "INSERT INTO inventory_movements \
                     (product_id, order_id, kind, delta_on_hand, delta_reserved, created_at) \
                 VALUES (?, NULL, ?, ?, 0, ?)",
            )
            .bind(product.id.0)
            .bind(Movement::Adjust.as_str())
            .bind(on_hand)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(product)
    }

    async fn product(&self, sku: &str) -> Result<Option<Product>> {
        let sql = format!(
            "SELECT {} FROM products WHERE sku = ?",
            rows::PRODUCT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(sku)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::product_from_row).transpose()
    }

    async fn products(&self) -> Result<Vec<Product>> {
        let sql = format!("SELECT {} FROM products ORDER BY id", rows::PRODUCT_COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(rows::product_from_row).collect()
    }

    async fn add_staff(&self, name: &str, role: ActorKind) -> Result<Staff> {
        // The roles of the `staff` table's CHECK constraint.
        if !matches!(role.as_str(), "support" | "admin") {
            return Err(StoreError::Invalid(format!(
                "`{role}` is not a staff role (support or admin)"
            )));
        }
        sqlx::query(
            "INSERT INTO staff (name, role, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET role = excluded.role",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(|err| refused(err, || format!("cannot add staff `{name}`")))?;
        Ok(Staff {
            name: name.to_owned(),
            role,
        })
    }

    async fn staff(&self, name: &str) -> Result<Option<Staff>> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM staff WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        role.map(|role| {
            Ok(Staff {
                name: name.to_owned(),
                role: rows::parse("staff.role", &role)?,
            })
        })
        .transpose()
    }

    async fn create_order(
        &self,
        order: &NewOrder,
        initial: State,
        now: DateTime<Utc>,
    ) -> Result<Order> {
        if order.items.is_empty() {
            return Err(StoreError::Invalid(
                "an order needs at least one line".to_owned(),
            ));
        }
        if let Some((sku, qty)) = order.items.iter().find(|(_, qty)| *qty <= 0) {
            return Err(StoreError::Invalid(format!(
                "the quantity of `{sku}` must be positive, got {qty}"
            )));
        }
        let mut tx = self.write().await?;
        let customer: i64 = sqlx::query_scalar(
            "INSERT INTO customers (email, created_at) VALUES (?, ?) \
             ON CONFLICT (email) DO UPDATE SET email = excluded.email RETURNING id",
        )
        .bind(&order.customer_email)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;

        let mut lines = Vec::with_capacity(order.items.len());
        let mut total: i64 = 0;
        for (sku, qty) in &order.items {
            let product: Option<(i64, i64)> =
                sqlx::query_as("SELECT id, price_cents FROM products WHERE sku = ?")
                    .bind(sku)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((product, price)) = product else {
                return Err(StoreError::Invalid(format!("unknown product `{sku}`")));
            };
            total = price
                .checked_mul(*qty)
                .and_then(|line| total.checked_add(line))
                .ok_or_else(|| StoreError::Invalid("the order total overflows".to_owned()))?;
            lines.push((product, *qty, price));
        }

        let id = rows::insert_order(
            &mut tx,
            &rows::NewOrderRow {
                customer: crate::types::CustomerId(customer),
                state: initial,
                parent: None,
                currency: &order.currency,
                total_cents: total,
                payment_status: crate::types::PaymentStatus::None,
                fulfillment_status: crate::types::FulfillmentStatus::Unfulfilled,
                shipping_address: order.shipping_address.as_deref(),
                at: now,
            },
        )
        .await?;
        writes::insert_items(&mut tx, id, &lines).await?;
        let created = rows::order(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {id} vanished while created")))?;
        tx.commit().await?;
        Ok(created)
    }

    async fn record_attempt(&self, attempt: &Attempt) -> Result<()> {
        sqlx::query(
            "INSERT INTO transition_attempts \
                 (order_id, event, actor_kind, actor_id, error_kind, error, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(attempt.order.0)
        .bind(attempt.event.as_str())
        .bind(attempt.actor_kind.as_str())
        .bind(attempt.actor_id.as_deref())
        .bind(&attempt.error_kind)
        .bind(&attempt.error)
        .bind(attempt.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        rows::order(&mut *self.pool.acquire().await?, id).await
    }

    async fn items(&self, id: OrderId) -> Result<Vec<OrderItem>> {
        rows::items(&mut *self.pool.acquire().await?, id).await
    }

    async fn history(&self, id: OrderId) -> Result<Vec<TransitionRecord>> {
        rows::history(&mut *self.pool.acquire().await?, id).await
    }

    async fn attempts(&self, id: OrderId) -> Result<Vec<Attempt>> {
        rows::attempts(&mut *self.pool.acquire().await?, id).await
    }

    async fn payments(&self, id: OrderId) -> Result<Vec<Payment>> {
        rows::payments(&mut *self.pool.acquire().await?, id).await
    }

    async fn refunds(&self, id: OrderId) -> Result<Vec<Refund>> {
        rows::refunds(&mut *self.pool.acquire().await?, id).await
    }

    async fn shipments(&self, id: OrderId) -> Result<Vec<Shipment>> {
        // Two reads: one snapshot for both.
        let mut tx = self.pool.begin().await?;
        let shipments = rows::shipments(&mut tx, id).await?;
        tx.rollback().await?;
        Ok(shipments)
    }

    async fn entity_trail(&self, machine: &str, entity: i64) -> Result<Vec<EntityTransition>> {
        rows::entity_trail(&mut *self.pool.acquire().await?, machine, entity).await
    }

    async fn inbox(&self, source: &str) -> Result<Vec<InboxMessage>> {
        let sql = format!(
            "SELECT {} FROM inbox WHERE source = ? ORDER BY received_at, external_id",
            rows::INBOX_COLUMNS
        );
        let found = sqlx::query(&sql).bind(source).fetch_all(&self.pool).await?;
        found.iter().map(rows::inbox_from_row).collect()
    }

    async fn list(&self, query: &OrderQuery) -> Result<Vec<Order>> {
        query::list(&self.pool, query).await
    }

    async fn count_by_state(&self, query: &OrderQuery) -> Result<Vec<(State, i64)>> {
        query::count_by_state(&self.pool, query).await
    }

    async fn count_by_status(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
        query::count_by_status(&self.pool).await
    }

    async fn verify(&self) -> Result<Vec<Finding>> {
        verify::verify(&self.pool).await
    }

    async fn due_messages(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {} FROM outbox \
             WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            rows::MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::message_from_row).collect()
    }

    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query("UPDATE outbox SET delivered_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no outbox message {id}")));
        }
        Ok(())
    }

    async fn mark_failed(&self, id: i64, error: &str, next_attempt: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? \
             WHERE id = ?",
        )
        .bind(error)
        .bind(next_attempt)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no outbox message {id}")));
        }
        Ok(())
    }

    async fn messages(&self, order: OrderId) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {} FROM outbox WHERE aggregate_id = ? ORDER BY id",
            rows::MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(order.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::message_from_row).collect()
    }
}
