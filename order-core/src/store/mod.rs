//! Storage: one `Store` trait, an adapter per database.
//!
//! **Invariant:** SQL lives only in the adapters. The engine asks for domain-level
//! reads and writes (`reserve`, `append_transition`, ...) inside a [`StoreTx`], and a
//! transition's state change, audit row, inventory changes and outbox rows commit in
//! that one transaction or not at all.
//!
//! The traits are object-safe (through `async_trait`) so that a program picks its
//! database from a URL at run time and the engine holds an `Arc<dyn Store>`.

mod checks;
mod decode;
mod entity;
mod order_query;
pub mod postgres;
pub mod sqlite;
mod statements;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::order::{ActorKind, Event, Reason, State};
use crate::query::OrderQuery;
use crate::types::{
    Attempt, EntityTransition, InboxMessage, ItemId, NewOrder, Order, OrderId, OrderItem,
    OutboxMessage, Payment, Product, ProductId, Refund, Shipment, ShipmentId, Staff,
    TransitionRecord,
};
use crate::verify::Finding;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What [`StoreTx::transition_reads`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitionReads {
    /// The order's lines, in line order.
    pub items: Vec<OrderItem>,
    /// The highest audit sequence number of the order, 0 when it has none.
    pub last_seq: i64,
    /// The lines' products read without a lock, as [`StoreTx::stock`] reads them, when
    /// the adapter reads them in the same round trip; `None` when it does not.
    pub stock: Option<Vec<Product>>,
}

/// A database holding orders: setup, reads outside transitions, and write
/// transactions for the engine.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates the schema or brings it up to date.
    async fn migrate(&self) -> Result<()>;

    /// Begins a write transaction. SQLite takes the database's write lock here
    /// (`BEGIN IMMEDIATE`); PostgreSQL locks rows as they are read for update.
    async fn begin(&self) -> Result<Box<dyn StoreTx>>;

    // Catalog and people, each in a transaction of its own.

    /// Adds a product with `on_hand` units in stock (recorded as an `adjust` movement).
    async fn add_product(
        &self,
        sku: &str,
        name: &str,
        price_cents: i64,
        on_hand: i64,
    ) -> Result<Product>;
    async fn product(&self, sku: &str) -> Result<Option<Product>>;
    async fn products(&self) -> Result<Vec<Product>>;
    /// Adds a member of staff, or changes the role of an existing one.
    async fn add_staff(&self, name: &str, role: ActorKind) -> Result<Staff>;
    async fn staff(&self, name: &str) -> Result<Option<Staff>>;

    /// Creates an order in `initial` state (the customer too, when new), with each
    /// line priced at the product's current price. Unknown SKUs and non-positive
    /// quantities are `StoreError::Invalid`.
    async fn create_order(
        &self,
        order: &NewOrder,
        initial: State,
        now: DateTime<Utc>,
    ) -> Result<Order>;

    /// Records a rejected or failed command, in a transaction of its own.
    async fn record_attempt(&self, attempt: &Attempt) -> Result<()>;

    // Reads.

    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    async fn items(&self, id: OrderId) -> Result<Vec<OrderItem>>;
    /// The order's audit trail in sequence order.
    async fn history(&self, id: OrderId) -> Result<Vec<TransitionRecord>>;
    /// The order's rejected and failed attempts, oldest first.
    async fn attempts(&self, id: OrderId) -> Result<Vec<Attempt>>;
    async fn payments(&self, id: OrderId) -> Result<Vec<Payment>>;
    async fn refunds(&self, id: OrderId) -> Result<Vec<Refund>>;
    async fn shipments(&self, id: OrderId) -> Result<Vec<Shipment>>;
    /// A payment's or shipment's own audit trail, in sequence order.
    async fn entity_trail(&self, machine: &str, entity: i64) -> Result<Vec<EntityTransition>>;
    /// Every message of `source` in the inbox, oldest received first.
    async fn inbox(&self, source: &str) -> Result<Vec<InboxMessage>>;
    /// The orders matching `query`, in id order, from `query.after` on, at most
    /// `query.limit` of them.
    async fn list(&self, query: &OrderQuery) -> Result<Vec<Order>>;
    /// How many orders match `query`, per state, in `State::ALL` order (states with
    /// none left out).
    async fn count_by_state(&self, query: &OrderQuery) -> Result<Vec<(State, i64)>>;
    /// How many orders there are per payment status and per fulfillment status.
    async fn count_by_status(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)>;
    /// Every broken invariant of the stored data; empty when all hold.
    async fn verify(&self) -> Result<Vec<Finding>>;

    // The outbox.

    /// Undelivered messages whose next attempt is due at `now`, oldest first.
    async fn due_messages(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>>;
    async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<()>;
    /// Counts a failed delivery and schedules the next attempt.
    async fn mark_failed(&self, id: i64, error: &str, next_attempt: DateTime<Utc>) -> Result<()>;
    /// Every message of an order, delivered or not, oldest first.
    async fn messages(&self, order: OrderId) -> Result<Vec<OutboxMessage>>;
}

/// A new audit row.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTransition<'a> {
    pub order: OrderId,
    pub seq: i64,
    pub event: Event,
    pub from: State,
    pub to: State,
    pub actor_kind: ActorKind,
    pub actor_id: Option<&'a str>,
    pub reason: Option<Reason>,
    pub note: Option<&'a str>,
    pub is_override: bool,
    pub machine_hash: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub metadata: &'a serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A new audit row of a payment's or a shipment's own machine (`payment.fsm`,
/// `shipment.fsm`): names in their `.fsm` spelling, `machine` as declared
/// (`"Shipment"`).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntityTransition<'a> {
    pub machine: &'a str,
    pub entity: i64,
    pub order: OrderId,
    pub seq: i64,
    pub event: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub actor_kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub is_override: bool,
    pub machine_hash: &'a str,
    /// The inbox message or idempotency key that caused the transition.
    pub external_id: Option<&'a str>,
    pub metadata: &'a serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A new outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage<'a> {
    pub aggregate: OrderId,
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    pub dedupe_key: &'a str,
    pub at: DateTime<Utc>,
}

/// A new payment attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment<'a> {
    pub order: OrderId,
    pub amount_cents: i64,
    pub idempotency_key: &'a str,
    pub at: DateTime<Utc>,
}

/// An inventory movement's kind, as in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Movement {
    /// `reserved += q`
    Reserve,
    /// `reserved -= q`
    Release,
    /// `on_hand -= q, reserved -= q`: the units left in a parcel.
    Ship,
    /// `on_hand += q`: returned units back on the shelf.
    Restock,
    /// `on_hand += q` (or `-=` for a negative q): a stock count.
    Adjust,
}

impl Movement {
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Reserve => "reserve",
            Movement::Release => "release",
            Movement::Ship => "ship",
            Movement::Restock => "restock",
            Movement::Adjust => "adjust",
        }
    }
}

/// One write transaction. Dropping it without `commit` rolls it back.
///
/// A refusal (`StoreError::Invalid`) leaves the transaction usable, on every adapter;
/// after any other error the caller must roll it back (PostgreSQL aborts a
/// transaction at its first failed statement).
#[async_trait]
pub trait StoreTx: Send {
    // Idempotency.

    /// The stored outcome (JSON) of a command with this key, if one committed.
    async fn command_outcome(&mut self, key: &str) -> Result<Option<String>>;
    async fn record_command(
        &mut self,
        key: &str,
        order: OrderId,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;

    // The order row.

    /// Reads the order and locks it for the rest of the transaction.
    async fn lock_order(&mut self, id: OrderId) -> Result<Option<Order>>;
    async fn items(&mut self, id: OrderId) -> Result<Vec<OrderItem>>;
    /// Writes the order's state, rollups, address and total, if its version is still
    /// `order.version`; bumps the version and `updated_at`. False when the version
    /// moved (a concurrent write won).
    async fn update_order(&mut self, order: &Order, at: DateTime<Utc>) -> Result<bool>;
    /// The highest audit sequence number of the order, 0 when it has none.
    async fn last_seq(&mut self, id: OrderId) -> Result<i64>;
    /// Locks the order and makes [`StoreTx::transition_reads`], in as few round trips as
    /// the adapter can; `None` when the order does not exist.
    async fn lock_for_transition(
        &mut self,
        id: OrderId,
    ) -> Result<Option<(Order, TransitionReads)>> {
        let Some(order) = self.lock_order(id).await? else {
            return Ok(None);
        };
        let reads = self.transition_reads(id).await?;
        Ok(Some((order, reads)))
    }
    /// What a transition reads once it holds the order's lock, in as few round trips as
    /// the adapter can. Call it after `lock_order`: on PostgreSQL a statement that
    /// waited for the lock still reads the snapshot it started with.
    async fn transition_reads(&mut self, id: OrderId) -> Result<TransitionReads> {
        Ok(TransitionReads {
            items: self.items(id).await?,
            last_seq: self.last_seq(id).await?,
            stock: None,
        })
    }
    async fn append_transition(&mut self, row: &NewTransition<'_>) -> Result<()>;
    async fn enqueue(&mut self, message: &NewMessage<'_>) -> Result<()>;
    /// When the order last entered `state` (from its audit trail).
    async fn entered_at(&mut self, id: OrderId, state: State) -> Result<Option<DateTime<Utc>>>;

    // Inventory: every change is one conditional update plus a ledger row.

    /// The products, locked in id order (callers pass ids sorted).
    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<Product>>;
    /// The products as they are now, without locking them: for a check whose outcome
    /// a later conditional write confirms (`reserve`).
    async fn stock(&mut self, ids: &[ProductId]) -> Result<Vec<Product>> {
        self.lock_products(ids).await
    }
    /// `reserve` for several products (ids sorted, each once), in as few round trips as
    /// the adapter can: the first product that falls short, if one does. What was
    /// reserved before a shortfall stays until the transaction rolls back.
    async fn reserve_all(
        &mut self,
        order: OrderId,
        wanted: &[(ProductId, i64)],
        at: DateTime<Utc>,
    ) -> Result<Option<ProductId>> {
        for (product, qty) in wanted {
            if !self.reserve(order, *product, *qty, at).await? {
                return Ok(Some(*product));
            }
        }
        Ok(None)
    }
    /// `reserved += qty` if `on_hand - reserved >= qty`; false (nothing written) if not.
    async fn reserve(
        &mut self,
        order: OrderId,
        product: ProductId,
        qty: i64,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Applies a movement other than a reservation, with its ledger row.
    async fn move_stock(
        &mut self,
        order: OrderId,
        product: ProductId,
        kind: Movement,
        qty: i64,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// What the order holds reserved per product, from the ledger; products with none
    /// left out, in id order.
    async fn reserved_by(&mut self, order: OrderId) -> Result<Vec<(ProductId, i64)>>;
    /// What has been restocked for the order per product, from the ledger.
    async fn restocked_by(&mut self, order: OrderId) -> Result<Vec<(ProductId, i64)>>;

    // Payments.

    async fn payments(&mut self, order: OrderId) -> Result<Vec<Payment>>;
    /// Inserts a `pending` attempt numbered after the order's last one.
    async fn insert_payment(&mut self, payment: &NewPayment<'_>) -> Result<Payment>;
    /// The payments with this processor reference (a split child shares its
    /// parent's), oldest first.
    async fn payments_by_reference(&mut self, reference: &str) -> Result<Vec<Payment>>;
    /// Writes state, amount, processor reference, failure code and review flag.
    async fn update_payment(&mut self, payment: &Payment, at: DateTime<Utc>) -> Result<()>;
    async fn refunds(&mut self, order: OrderId) -> Result<Vec<Refund>>;
    async fn insert_refund(&mut self, refund: &Refund, at: DateTime<Utc>) -> Result<()>;
    async fn update_refund_state(&mut self, key: &str, state: &str) -> Result<()>;

    // Shipments and order lines.

    async fn shipments(&mut self, order: OrderId) -> Result<Vec<Shipment>>;
    /// A parcel with these quantities, its label made (`label_created`, the initial
    /// state of `shipment.fsm`); adds them to the lines' `qty_shipped`.
    async fn insert_shipment(
        &mut self,
        order: OrderId,
        carrier: &str,
        tracking: Option<&str>,
        items: &[(ItemId, i64)],
        at: DateTime<Utc>,
    ) -> Result<ShipmentId>;
    /// Sets a line's `qty_returned`.
    async fn set_returned(&mut self, item: ItemId, qty_returned: i64) -> Result<()>;
    /// Sets a line's `qty_shipped` (a cancelled, lost or returned parcel's units no
    /// longer count as shipped).
    async fn set_shipped(&mut self, item: ItemId, qty_shipped: i64) -> Result<()>;
    /// Reads a shipment and locks it for the rest of the transaction (lock its order
    /// first: orders before shipments, always).
    async fn lock_shipment(&mut self, id: ShipmentId) -> Result<Option<Shipment>>;
    /// The shipment with this tracking number, unlocked.
    async fn shipment_by_tracking(&mut self, tracking: &str) -> Result<Option<Shipment>>;
    /// Sets the shipment's state to `row.to` (and `delivered_at` to `row.at` when that
    /// is `delivered`) and appends `row` to its audit trail. `row.machine` must be
    /// `"Shipment"` and `row.seq` must follow the trail's last; refused otherwise.
    async fn write_shipment_transition(&mut self, row: &NewEntityTransition<'_>) -> Result<()>;
    /// Appends `row` to its entity's audit trail; `row.seq` must follow the trail's
    /// last. The entity's own row is the caller's to write.
    async fn append_entity_transition(&mut self, row: &NewEntityTransition<'_>) -> Result<()>;
    /// Writes a payment as its transition left it (its state is `row.to`) and appends
    /// `row` to its audit trail. Payments are written under their order's lock, so the
    /// rows need no condition of their own beyond the trail's numbering.
    async fn write_payment_transition(
        &mut self,
        payment: &Payment,
        row: &NewEntityTransition<'_>,
    ) -> Result<()> {
        entity::check_payment_row(row)?;
        if payment.state != row.to {
            return Err(StoreError::Invalid(format!(
                "payment {} is written in `{}`, but its audit row enters `{}`",
                payment.id, payment.state, row.to
            )));
        }
        self.update_payment(payment, row.at).await?;
        self.append_entity_transition(row).await
    }

    // Payments' and shipments' own audit trails, and the inbox.

    /// An entity's audit trail in sequence order (empty when it has none).
    async fn entity_trail(&mut self, machine: &str, entity: i64) -> Result<Vec<EntityTransition>>;
    /// Stores a webhook unless one with the same source and external id is stored:
    /// true when it was new.
    async fn inbox_receive(
        &mut self,
        source: &str,
        external_id: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Up to `limit` unprocessed messages of `source`, oldest received first (then by
    /// external id).
    async fn inbox_pending(&mut self, source: &str, limit: i64) -> Result<Vec<InboxMessage>>;
    /// Marks a message processed with what came of it (`applied`, `duplicate`, ...).
    async fn inbox_done(
        &mut self,
        source: &str,
        external_id: &str,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Replaces the order's lines (modify items): the new set, priced already.
    async fn replace_items(
        &mut self,
        order: OrderId,
        items: &[(ProductId, i64, i64)],
    ) -> Result<()>;
    /// Moves lines to another order (split), keeping their quantities.
    async fn move_items(&mut self, items: &[ItemId], to: OrderId) -> Result<()>;
    /// A new order row for a split: same customer and currency, `parent` set.
    async fn insert_child_order(
        &mut self,
        parent: &Order,
        state: State,
        at: DateTime<Utc>,
    ) -> Result<Order>;
    async fn add_note(
        &mut self,
        order: OrderId,
        author: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Step 8 of a transition in one call: `update_order` (false, and nothing else
    /// written, when the version moved), then the audit row and the outbox rows. An
    /// adapter may do it in one round trip, which shortens how long the transaction
    /// holds its row locks.
    async fn write_transition(
        &mut self,
        order: &Order,
        row: &NewTransition<'_>,
        messages: &[NewMessage<'_>],
        at: DateTime<Utc>,
    ) -> Result<bool> {
        if !self.update_order(order, at).await? {
            return Ok(false);
        }
        self.append_transition(row).await?;
        for message in messages {
            self.enqueue(message).await?;
        }
        Ok(true)
    }

    // Bulk: one transaction for many orders, each after a savepoint of its own.

    /// Marks the point `rollback_to_savepoint` returns to (one at a time).
    async fn savepoint(&mut self) -> Result<()>;
    /// Keeps what was done since the savepoint.
    async fn release_savepoint(&mut self) -> Result<()>;
    /// Undoes what was done since the savepoint; the transaction goes on.
    async fn rollback_to_savepoint(&mut self) -> Result<()>;

    /// Locks many orders, in id order (ids sorted), in as few round trips as the
    /// adapter can; missing ids are left out.
    async fn lock_orders(&mut self, ids: &[OrderId]) -> Result<Vec<Order>> {
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            orders.extend(self.lock_order(*id).await?);
        }
        Ok(orders)
    }

    /// The lines of many orders.
    async fn items_of(&mut self, ids: &[OrderId]) -> Result<Vec<OrderItem>> {
        let mut items = Vec::new();
        for id in ids {
            items.extend(self.items(*id).await?);
        }
        Ok(items)
    }

    /// The highest audit sequence number of each order (0 when it has none).
    async fn last_seqs(&mut self, ids: &[OrderId]) -> Result<Vec<(OrderId, i64)>> {
        let mut seqs = Vec::with_capacity(ids.len());
        for id in ids {
            seqs.push((*id, self.last_seq(*id).await?));
        }
        Ok(seqs)
    }

    /// `update_order` for many orders; the ids whose version had moved.
    async fn update_orders(&mut self, orders: &[Order], at: DateTime<Utc>) -> Result<Vec<OrderId>> {
        let mut stale = Vec::new();
        for order in orders {
            if !self.update_order(order, at).await? {
                stale.push(order.id);
            }
        }
        Ok(stale)
    }

    /// `append_transition` for many rows.
    async fn append_transitions(&mut self, rows: &[NewTransition<'_>]) -> Result<()> {
        for row in rows {
            self.append_transition(row).await?;
        }
        Ok(())
    }

    /// `enqueue` for many messages.
    async fn enqueue_all(&mut self, messages: &[NewMessage<'_>]) -> Result<()> {
        for message in messages {
            self.enqueue(message).await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()>;
    async fn rollback(self: Box<Self>) -> Result<()>;
}
