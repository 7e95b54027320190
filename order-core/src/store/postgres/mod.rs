//! The PostgreSQL adapter: for production, and for many processes sharing one database
//! (several `orderctl`/service instances at once; row locks make that safe).
//!
//! - One pool of at most 16 connections per store. Reads outside a transaction take a
//!   connection of their own, so a caller may hold a transaction and read through the
//!   store at the same time (unlike `sqlite::memory:`).
//! - A write transaction is READ COMMITTED (asked for explicitly, whatever the server's
//!   default). It locks what it reads for update: the order (`SELECT ... FOR UPDATE`),
//!   the products in id order (`... WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
//!   which does not hold up new orders of the product). A stock reservation is one
//!   conditional `UPDATE` that PostgreSQL re-checks against the committed row when it
//!   had to wait for it, so stock is never oversold.
//! - The schema is `migrations/postgres`: the SQLite schema's tables, constraints and
//!   triggers in PostgreSQL types (identities, TIMESTAMPTZ, BOOLEAN, JSONB, plpgsql
//!   triggers). Timestamps keep microseconds: a `DateTime<Utc>` with nanoseconds reads
//!   back truncated.
//! - Order ids (and so numbers) come from a sequence: a rolled-back `create_order`
//!   leaves a gap, where SQLite would reuse the number.
//! - Refusals are `StoreError::Invalid` with the database's words, and leave a
//!   transaction usable (see `tx.rs`). Serialization failures and deadlocks are
//!   `StoreError::Database`; [`is_retryable`] tells them apart.

mod bulk;
mod parcels;
mod query;
mod rows;
mod transition;
mod tx;
mod verify;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::StoreError;
use crate::order::{ActorKind, State};
use crate::query::OrderQuery;
use crate::store::{Result, Store, StoreTx};
use crate::types::{
    Attempt, CustomerId, EntityTransition, FulfillmentStatus, InboxMessage, NewOrder, Order,
    OrderId, OrderItem, OutboxMessage, Payment, PaymentStatus, Product, Refund, Shipment, Staff,
    TransitionRecord,
};
use crate::verify::Finding;

use rows::refused;

/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections per store: transactions that wait for a row lock hold theirs.
const MAX_CONNECTIONS: u32 = 16;
/// Every write transaction's isolation, whatever the server's default.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
/// Reads that must agree with each other (shipments and their lines, `verify`).
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// SQLSTATE `serialization_failure`.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE `deadlock_detected`.
const DEADLOCK_DETECTED: &str = "40P01";

/// Whether `err` is a transaction that PostgreSQL aborted because of a concurrent one:
/// a serialization failure (SQLSTATE 40001) or a deadlock (40P01), which this adapter
/// reports as `StoreError::Database` (or already classified `StoreError::Retryable`).
/// Running the whole transaction again (a new `begin`) may succeed; nothing of it was
/// written.
pub fn is_retryable(err: &StoreError) -> bool {
    match err {
        StoreError::Database(err) => err
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == SERIALIZATION_FAILURE || code == DEADLOCK_DETECTED),
        StoreError::Retryable(_) => true,
        _ => false,
    }
}

/// A PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS]` (the
    /// database must exist). Does not migrate: see [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url)?.application_name("order-core");
        // One plain connection first: a server that refuses or does not exist is
        // reported at once, where the pool would retry until its acquire timeout.
        let probe = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?;
        sqlx::Connection::close(probe).await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool, for tests and benchmarks that issue SQL directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A READ COMMITTED write transaction.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin_with(BEGIN).await?)
    }

    /// A read-only transaction on one snapshot.
    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin_with(BEGIN_SNAPSHOT).await?)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        // sqlx's migrator holds a session advisory lock while it runs, so processes
        // migrating one database at once take turns; each migration is a transaction.
        // `run_direct` is `run` on a connection, minus the `Acquire` bound that an
        // `async_trait` future cannot prove `Send` for.
        let mut conn = self.pool.acquire().await?;
        let result = sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut *conn)
            .await;
        if result.is_err() {
            // A failed run does not release the advisory lock: close the connection
            // (and with it the lock) rather than return it to the pool.
            if let Err(err) = conn.detach().close().await {
                tracing::warn!(%err, "could not close the connection of a failed migration");
            }
        }
        Ok(result?)
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        Ok(Box::new(tx::PostgresTx::new(self.write().await?)))
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
             VALUES ($1, $2, $3, $4, 0) RETURNING {}",
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
                 VALUES ($1, NULL, 'adjust', $2, 0, $3)",
            )
            .bind(product.id.0)
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
            "SELECT {} FROM products WHERE sku = $1",
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
            "INSERT INTO staff (name, role, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role",
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
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM staff WHERE name = $1")
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
        // The catalog first: an unknown SKU writes nothing, not even the customer.
        let skus: Vec<&str> = order.items.iter().map(|(sku, _)| sku.as_str()).collect();
        let mut tx = self.write().await?;
        let catalog: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT sku, id, price_cents FROM products WHERE sku = ANY($1)")
                .bind(&skus)
                .fetch_all(&mut *tx)
                .await?;
        let mut lines = Vec::with_capacity(order.items.len());
        let mut total: i64 = 0;
        for (sku, qty) in &order.items {
            let Some((_, product, price)) = catalog.iter().find(|(s, _, _)| s == sku) else {
                return Err(StoreError::Invalid(format!("unknown product `{sku}`")));
            };
            total = price
                .checked_mul(*qty)
                .and_then(|line| total.checked_add(line))
                .ok_or_else(|| StoreError::Invalid("the order total overflows".to_owned()))?;
            lines.push((*product, *qty, *price));
        }

        // The customer: inserted, or found when an earlier (or concurrent, committed)
        // order created it. Under READ COMMITTED the SELECT is a new snapshot, so it
        // sees the row that made the INSERT do nothing.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customers (email, created_at) VALUES ($1, $2) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(&order.customer_email)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let customer = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM customers WHERE email = $1")
                    .bind(&order.customer_email)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };

        let id = rows::insert_order(
            &mut tx,
            &rows::NewOrderRow {
                customer: CustomerId(customer),
                state: initial,
                parent: None,
                currency: &order.currency,
                total_cents: total,
                payment_status: PaymentStatus::None,
                fulfillment_status: FulfillmentStatus::Unfulfilled,
                shipping_address: order.shipping_address.as_deref(),
                at: now,
            },
        )
        .await?;
        writes::insert_items(&mut tx, id, &lines).await?;
        let created = rows::order(&mut tx, id, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {id} vanished while created")))?;
        tx.commit().await?;
        Ok(created)
    }

    async fn record_attempt(&self, attempt: &Attempt) -> Result<()> {
        sqlx::query(
            "INSERT INTO transition_attempts \
                 (order_id, event, actor_kind, actor_id, error_kind, error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(attempt.order.0)
        .bind(attempt.event.as_str())
        .bind(attempt.actor_kind.as_str())
        .bind(attempt.actor_id.as_deref())
        .bind(&attempt.error_kind)
        .bind(&attempt.error)
        .bind(attempt.at)
        .execute(&self.pool)
        .await
        .map_err(|err| {
            refused(err, || {
                format!("cannot record an attempt on order {}", attempt.order)
            })
        })?;
        Ok(())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        rows::order(&mut *self.pool.acquire().await?, id, false).await
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
        let mut tx = self.snapshot().await?;
        let shipments = rows::shipments(&mut tx, id).await?;
        tx.rollback().await?;
        Ok(shipments)
    }

    async fn entity_trail(&self, machine: &str, entity: i64) -> Result<Vec<EntityTransition>> {
        rows::entity_trail(&mut *self.pool.acquire().await?, machine, entity).await
    }

    async fn inbox(&self, source: &str) -> Result<Vec<InboxMessage>> {
        let sql = format!(
            "SELECT {} FROM inbox WHERE source = $1 ORDER BY {}",
            rows::INBOX_COLUMNS,
            rows::INBOX_ORDER
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
        // Two reads: one snapshot for both.
        let mut tx = self.snapshot().await?;
        let counts = query::count_by_status(&mut tx).await?;
        tx.rollback().await?;
        Ok(counts)
    }

    async fn verify(&self) -> Result<Vec<Finding>> {
        let mut tx = self.snapshot().await?;
        let findings = verify::verify(&mut tx).await?;
        tx.rollback().await?;
        Ok(findings)
    }

    async fn due_messages(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {} FROM outbox \
             WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
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
        let done = sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE id = $2")
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
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
             WHERE id = $3",
        )
        .bind(error)
        .bind(next_attempt)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|err| refused(err, || format!("cannot mark outbox message {id} failed")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no outbox message {id}")));
        }
        Ok(())
    }

    async fn messages(&self, order: OrderId) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {} FROM outbox WHERE aggregate_id = $1 ORDER BY id",
            rows::MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(order.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::message_from_row).collect()
    }
}
