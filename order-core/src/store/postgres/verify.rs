//! `Store::verify`: a few aggregate queries over one read snapshot (the caller's
//! REPEATABLE READ transaction), one per invariant.

use sqlx::postgres::PgConnection;

use crate::order::State;
use crate::store::Result;
use crate::store::entity::{PAYMENT, SHIPMENT};
use crate::verify::Finding;

pub(super) async fn verify(conn: &mut PgConnection) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let initial = State::ALL
        .iter()
        .copied()
        .find(|state| state.is_initial())
        .map_or("", |state| state.as_str());

    // The order row's state is where its audit trail ends; without a trail, an order is
    // in the initial state (split-off children start in their parent's state).
    let rows: Vec<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT o.id, o.state, t.seq, t.to_state \
         FROM orders o \
         LEFT JOIN (SELECT order_id, MAX(seq) AS seq FROM order_transitions GROUP BY order_id) \
             last ON last.order_id = o.id \
         LEFT JOIN order_transitions t ON t.order_id = o.id AND t.seq = last.seq \
         WHERE (t.seq IS NULL AND o.parent_order_id IS NULL AND o.state <> $1) \
            OR (t.seq IS NOT NULL AND t.to_state <> o.state) \
         ORDER BY o.id",
    )
    .bind(initial)
    .fetch_all(&mut *conn)
    .await?;
    for (order, state, seq, to_state) in rows {
        let detail = match (seq, to_state) {
            (Some(seq), Some(to)) => {
                format!("order {order} is in `{state}` but its audit row {seq} moved it to `{to}`")
            }
            _ => format!(
                "order {order} is in `{state}` without any audit row (expected `{initial}`)"
            ),
        };
        findings.push(Finding::new("state_matches_audit", detail));
    }

    // Sequence numbers are 1..=n. They are unique per order (a constraint), so a minimum
    // of 1 and a maximum equal to the count mean no gaps.
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT order_id, COUNT(*), MIN(seq), MAX(seq) FROM order_transitions \
         GROUP BY order_id HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*) \
         ORDER BY order_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order, count, min, max) in rows {
        findings.push(Finding::new(
            "audit_sequence",
            format!(
                "order {order} has {count} audit rows numbered {min}..={max}, expected 1..={count}"
            ),
        ));
    }

    // A payment's or a shipment's row is in the state where its own trail ends (rows
    // from before the trails existed have none, and are not checked).
    for (machine, table, kind) in [
        (SHIPMENT, "shipments", "shipment"),
        (PAYMENT, "payments", "payment"),
    ] {
        let sql = format!(
            "SELECT e.id, e.state, t.seq, t.to_state \
             FROM {table} e \
             JOIN (SELECT entity_id, MAX(seq) AS seq FROM entity_transitions \
                   WHERE machine = $1 GROUP BY entity_id) last ON last.entity_id = e.id \
             JOIN entity_transitions t \
                 ON t.machine = $1 AND t.entity_id = e.id AND t.seq = last.seq \
             WHERE t.to_state <> e.state \
             ORDER BY e.id"
        );
        let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(&sql)
            .bind(machine)
            .fetch_all(&mut *conn)
            .await?;
        for (entity, state, seq, to) in rows {
            findings.push(Finding::new(
                &format!("{kind}_matches_trail"),
                format!(
                    "{kind} {entity} is in `{state}` but its audit row {seq} moved it to `{to}`"
                ),
            ));
        }
    }

    // An entity's sequence numbers are 1..=n, as an order's are.
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT machine, entity_id, COUNT(*), MIN(seq), MAX(seq) FROM entity_transitions \
         GROUP BY machine, entity_id HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*) \
         ORDER BY machine COLLATE \"C\", entity_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (machine, entity, count, min, max) in rows {
        findings.push(Finding::new(
            "entity_trail_sequence",
            format!(
                "{machine} {entity} has {count} audit rows numbered {min}..={max}, \
                 expected 1..={count}"
            ),
        ));
    }

    // A product's counters are the sums of its ledger.
    let rows: Vec<(i64, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT p.id, p.sku, p.on_hand, p.reserved, \
             COALESCE(m.on_hand, 0), COALESCE(m.reserved, 0) \
         FROM products p \
         LEFT JOIN (SELECT product_id, SUM(delta_on_hand)::BIGINT AS on_hand, \
                        SUM(delta_reserved)::BIGINT AS reserved \
                    FROM inventory_movements GROUP BY product_id) m ON m.product_id = p.id \
         WHERE p.on_hand <> COALESCE(m.on_hand, 0) OR p.reserved <> COALESCE(m.reserved, 0) \
         ORDER BY p.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, sku, on_hand, reserved, ledger_on_hand, ledger_reserved) in rows {
        findings.push(Finding::new(
            "stock_matches_ledger",
            format!(
                "product {id} `{sku}` has on_hand {on_hand}, reserved {reserved}; \
                 its ledger sums to on_hand {ledger_on_hand}, reserved {ledger_reserved}"
            ),
        ));
    }

    // The CHECK constraint makes this impossible; verify anyway.
    let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT id, sku, on_hand, reserved FROM products \
         WHERE reserved < 0 OR reserved > on_hand ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, sku, on_hand, reserved) in rows {
        findings.push(Finding::new(
            "reserved_within_on_hand",
            format!("product {id} `{sku}` has reserved {reserved} outside 0..={on_hand}"),
        ));
    }

    // No order has released or shipped more of a product than it reserved.
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT order_id, product_id, SUM(delta_reserved)::BIGINT FROM inventory_movements \
         WHERE order_id IS NOT NULL GROUP BY order_id, product_id \
         HAVING SUM(delta_reserved) < 0 ORDER BY order_id, product_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order, product, held) in rows {
        findings.push(Finding::new(
            "order_reservation_negative",
            format!("order {order} holds {held} of product {product} reserved"),
        ));
    }

    // Every reserved unit is held by some order: movements without an order never
    // change `reserved`.
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, SUM(delta_reserved)::BIGINT FROM inventory_movements \
         WHERE order_id IS NULL GROUP BY product_id \
         HAVING SUM(delta_reserved) <> 0 ORDER BY product_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (product, unheld) in rows {
        findings.push(Finding::new(
            "reservations_match_orders",
            format!("product {product} has {unheld} reserved by movements of no order"),
        ));
    }

    Ok(findings)
}
