//! What both adapters write the same way: the statements of a write transaction whose
//! text suits both databases, and the words of the refusals they share.
//!
//! A statement is written here once; each adapter binds its values and runs it on its
//! own connection, because a function generic over both drivers would have to name
//! every value's encoding for each of them. Placeholders are `$1`, `$2`, ..., which
//! SQLite accepts as well, and a repeated one stands for the same value on both, so
//! the adapters bind in the order the placeholders are numbered.
//!
//! A statement that differs for a reason stays in its adapter. PostgreSQL checks the
//! rules of a transition's writes inside the statement (`ON CONFLICT ... DO NOTHING`,
//! a `SELECT` from the order, a CTE writing the ledger row beside the counters), so
//! that a refusal answers "no row written" and keeps the transaction usable, and it
//! batches with arrays and `UNNEST`; SQLite writes plain rows under the write lock of
//! `BEGIN IMMEDIATE` and lets its constraints and triggers refuse. The `SELECT`s that
//! read rows into domain types are in `decode`.

use crate::store::NewEntityTransition;

// One order's transition.

/// The stored outcome of the command with key `$1`.
pub(super) const COMMAND_OUTCOME: &str =
    "SELECT outcome FROM command_log WHERE idempotency_key = $1";

/// The order row's compare-and-set: writes `$1`..`$6` to order `$7` if its version is
/// still `$8`.
pub(super) const UPDATE_ORDER: &str = "UPDATE orders SET state = $1, payment_status = $2, \
         fulfillment_status = $3, shipping_address = $4, total_cents = $5, \
         version = version + 1, updated_at = $6 \
     WHERE id = $7 AND version = $8";

/// The highest audit sequence number of order `$1`, 0 when it has none.
pub(super) const LAST_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) FROM order_transitions WHERE order_id = $1";

// The ledger. PostgreSQL's `SUM` of BIGINTs is NUMERIC, hence the casts; SQLite's sum of
// integers is an integer already, which the cast keeps.

/// What order `$1` holds reserved per product (reserve +q, release -q, ship -q: what
/// is left is still held), products with none left out, in id order.
pub(super) const RESERVED_BY: &str = "SELECT product_id, CAST(SUM(delta_reserved) AS BIGINT) \
     FROM inventory_movements WHERE order_id = $1 \
     GROUP BY product_id HAVING SUM(delta_reserved) <> 0 ORDER BY product_id";

/// What has been restocked for order `$1` per product, in id order.
pub(super) const RESTOCKED_BY: &str = "SELECT product_id, CAST(SUM(delta_on_hand) AS BIGINT) \
     FROM inventory_movements WHERE order_id = $1 AND kind = 'restock' \
     GROUP BY product_id HAVING SUM(delta_on_hand) <> 0 ORDER BY product_id";

// Payments and refunds.

/// An `initiated` attempt of order `$1` for `$2` cents under key `$3` at `$4`, numbered
/// after the order's last attempt; returns `columns` of the payment's row (the columns
/// of `decode`'s payment row, which each adapter names through its own imports).
pub(super) fn insert_payment(columns: &str) -> String {
    format!(
        "INSERT INTO payments (order_id, attempt_no, state, amount_cents, idempotency_key, \
             processor_ref, failure_code, fraud_review, created_at, updated_at) \
         SELECT $1, COALESCE(MAX(attempt_no), 0) + 1, 'initiated', $2, $3, NULL, NULL, \
             FALSE, $4, $4 \
         FROM payments WHERE order_id = $1 \
         RETURNING {columns}"
    )
}

/// Writes `$1`..`$7` to payment `$8`.
pub(super) const UPDATE_PAYMENT: &str = "UPDATE payments SET state = $1, amount_cents = $2, \
         idempotency_key = $3, processor_ref = $4, failure_code = $5, fraud_review = $6, \
         updated_at = $7 \
     WHERE id = $8";

/// A refund: order, payment, amount, state, reason, key, processor reference, time.
pub(super) const INSERT_REFUND: &str = "INSERT INTO refunds (order_id, payment_id, \
         amount_cents, state, reason, idempotency_key, processor_ref, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Moves the refund with key `$2` to state `$1`.
pub(super) const UPDATE_REFUND_STATE: &str =
    "UPDATE refunds SET state = $1 WHERE idempotency_key = $2";

// Order lines and parcels.

/// Replacing an order's lines starts by deleting those of order `$1`.
pub(super) const DELETE_ITEMS: &str = "DELETE FROM order_items WHERE order_id = $1";

/// Moves line `$2` to order `$1`, numbered after that order's last line so that line
/// numbers never clash.
pub(super) const MOVE_ITEM: &str = "UPDATE order_items SET order_id = $1, line_no = \
         (SELECT COALESCE(MAX(line_no), 0) + 1 FROM order_items WHERE order_id = $1) \
     WHERE id = $2";

/// A parcel of order `$1`, its label made, by carrier `$2` with tracking number `$3`,
/// shipped at `$4`; returns its id.
pub(super) const INSERT_SHIPMENT: &str = "INSERT INTO shipments (order_id, state, carrier, \
         tracking_number, shipped_at, delivered_at) \
     VALUES ($1, 'label_created', $2, $3, $4, NULL) RETURNING id";

/// Adds `$1` to the shipped quantity of line `$2`, if it is on order `$3`.
pub(super) const SHIP_LINE: &str = "UPDATE order_items SET qty_shipped = qty_shipped + $1 \
     WHERE id = $2 AND order_id = $3";

/// A parcel's (`$1`) quantity `$3` of line `$2`.
pub(super) const INSERT_SHIPMENT_ITEM: &str =
    "INSERT INTO shipment_items (shipment_id, order_item_id, quantity) VALUES ($1, $2, $3)";

/// Sets line `$2`'s shipped quantity to `$1`.
pub(super) const SET_SHIPPED: &str = "UPDATE order_items SET qty_shipped = $1 WHERE id = $2";

/// Sets line `$2`'s returned quantity to `$1`.
pub(super) const SET_RETURNED: &str = "UPDATE order_items SET qty_returned = $1 WHERE id = $2";

/// What a refused parcel transition found of shipment `$2` of machine `$1`: its order,
/// its state and its trail's last sequence number ([`entity::Found`]).
///
/// [`entity::Found`]: crate::store::entity::Found
pub(super) const SHIPMENT_FOUND: &str = "SELECT s.order_id, s.state, \
         (SELECT COALESCE(MAX(t.seq), 0) FROM entity_transitions t \
          WHERE t.machine = $1 AND t.entity_id = s.id) \
     FROM shipments s WHERE s.id = $2";

/// A note on order `$1` by `$2` saying `$3`, at `$4`.
pub(super) const INSERT_NOTE: &str =
    "INSERT INTO order_notes (order_id, author, body, created_at) VALUES ($1, $2, $3, $4)";

// Payments' and parcels' audit trails, and the inbox.

/// An audit row of a payment's or a parcel's trail, its values in the order of
/// [`NewEntityTransition`]'s fields (the metadata as each database stores JSON).
pub(super) const INSERT_ENTITY_TRANSITION: &str = "INSERT INTO entity_transitions (machine, \
         entity_id, order_id, seq, event, from_state, to_state, actor_kind, actor_id, reason, \
         is_override, machine_hash, external_id, metadata, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// How a refused [`INSERT_ENTITY_TRANSITION`] of `row` begins its message.
pub(super) fn audit_row_refused(row: &NewEntityTransition<'_>) -> String {
    format!(
        "cannot write audit row {} of {} {}",
        row.seq,
        row.machine.to_lowercase(),
        row.entity
    )
}

/// Stores webhook `$2` from source `$1` with payload `$3`, received at `$4`, unless one
/// with the same source and external id is stored (no row written then).
pub(super) const INBOX_RECEIVE: &str = "INSERT INTO inbox (source, external_id, payload, \
         received_at, processed_at, outcome) \
     VALUES ($1, $2, $3, $4, NULL, NULL) \
     ON CONFLICT (source, external_id) DO NOTHING";

/// Marks message `$4` from source `$3` processed at `$1` with outcome `$2`.
pub(super) const INBOX_DONE: &str = "UPDATE inbox SET processed_at = $1, outcome = $2 \
     WHERE source = $3 AND external_id = $4";

// Bulk operations: one savepoint at a time, under one name.

pub(super) const SAVEPOINT: &str = "SAVEPOINT bulk_order";
pub(super) const RELEASE_SAVEPOINT: &str = "RELEASE SAVEPOINT bulk_order";
pub(super) const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT bulk_order";

// The binds of the statements with many parameters, written once beside their SQL so
// that the `$n` numbering and the bind order cannot drift apart between the adapters.
// Macros, as `decode::bind_parcels!` is, because each adapter's query has its own
// database type and a function over both would need sqlx's encoding bounds.

/// [`UPDATE_ORDER`] of `order` at `at`.
macro_rules! update_order {
    ($order:expr, $at:expr) => {{
        let order: &$crate::types::Order = $order;
        sqlx::query($crate::store::statements::UPDATE_ORDER)
            .bind(order.state.as_str())
            .bind(order.payment_status.as_str())
            .bind(order.fulfillment_status.as_str())
            .bind(order.shipping_address.as_deref())
            .bind(order.total_cents)
            .bind($at)
            .bind(order.id.0)
            .bind(order.version)
    }};
}
pub(super) use update_order;

/// [`UPDATE_PAYMENT`] of `payment` at `at`.
macro_rules! update_payment {
    ($payment:expr, $at:expr) => {{
        let payment: &$crate::types::Payment = $payment;
        sqlx::query($crate::store::statements::UPDATE_PAYMENT)
            .bind(&payment.state)
            .bind(payment.amount_cents)
            .bind(&payment.idempotency_key)
            .bind(payment.processor_ref.as_deref())
            .bind(payment.failure_code.as_deref())
            .bind(payment.fraud_review)
            .bind($at)
            .bind(payment.id.0)
    }};
}
pub(super) use update_payment;

/// [`INSERT_REFUND`] of `refund` at `at`.
macro_rules! insert_refund {
    ($refund:expr, $at:expr) => {{
        let refund: &$crate::types::Refund = $refund;
        sqlx::query($crate::store::statements::INSERT_REFUND)
            .bind(refund.order.0)
            .bind(refund.payment.0)
            .bind(refund.amount_cents)
            .bind(&refund.state)
            .bind(refund.reason.as_deref())
            .bind(&refund.idempotency_key)
            .bind(refund.processor_ref.as_deref())
            .bind($at)
    }};
}
pub(super) use insert_refund;

/// [`INSERT_ENTITY_TRANSITION`] of `row`, its metadata as the adapter stores JSON.
macro_rules! insert_entity_transition {
    ($row:expr, $metadata:expr) => {{
        let row: &$crate::store::NewEntityTransition<'_> = $row;
        sqlx::query($crate::store::statements::INSERT_ENTITY_TRANSITION)
            .bind(row.machine)
            .bind(row.entity)
            .bind(row.order.0)
            .bind(row.seq)
            .bind(row.event)
            .bind(row.from)
            .bind(row.to)
            .bind(row.actor_kind)
            .bind(row.actor_id)
            .bind(row.reason)
            .bind(row.is_override)
            .bind(row.machine_hash)
            .bind(row.external_id)
            .bind($metadata)
            .bind(row.at)
    }};
}
pub(super) use insert_entity_transition;
