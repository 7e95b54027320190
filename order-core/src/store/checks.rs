//! `Store::verify`'s checks, written once for both adapters: one aggregate query per
//! invariant, each row it returns being one finding.
//!
//! Each adapter runs [`checks`] in order on one consistent read (SQLite in a deferred
//! transaction, PostgreSQL in a REPEATABLE READ snapshot) and turns every row into a
//! finding with [`Check::finding`]. The SQL text is the same on both databases: `$1`
//! placeholders (which SQLite accepts too), `CAST(... AS BIGINT)` where PostgreSQL's
//! `SUM` would be NUMERIC (SQLite's sum of integers is one already, which the cast
//! keeps), and the one collation difference passed in as `bytewise`.

use std::fmt;

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::order::State;
use crate::store::Result;
use crate::store::entity::{PAYMENT, SHIPMENT};
use crate::verify::Finding;

use Column::{Int, MaybeInt, MaybeText, Text};

/// The type of one column of a check's rows. The checks return rows of different
/// shapes, so each names its columns and is worded from the decoded [`Value`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Int,
    Text,
    /// An integer that a LEFT JOIN may leave NULL.
    MaybeInt,
    /// Text that a LEFT JOIN may leave NULL.
    MaybeText,
}

/// One value of a row, decoded as its [`Column`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    Int(i64),
    Text(String),
    Null,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(text) => f.write_str(text),
            Value::Null => f.write_str("NULL"),
        }
    }
}

/// How a row of a check becomes a finding's detail.
type Wording = Box<dyn Fn(&[Value]) -> String + Send + Sync>;

/// One invariant: the query that finds the rows breaking it, and how to word each.
pub(super) struct Check {
    /// The findings' `check`.
    name: String,
    /// Returns one row per finding, in the order they are reported.
    pub(super) sql: String,
    /// The value of `$1`, when the query has one.
    pub(super) bind: Option<&'static str>,
    columns: &'static [Column],
    word: Wording,
}

impl Check {
    fn new(
        name: &str,
        sql: String,
        bind: Option<&'static str>,
        columns: &'static [Column],
        word: impl Fn(&[Value]) -> String + Send + Sync + 'static,
    ) -> Check {
        Check {
            name: name.to_owned(),
            sql,
            bind,
            columns,
            word: Box::new(word),
        }
    }

    /// The finding that one row of [`Check::sql`] stands for.
    pub(super) fn finding<R>(&self, row: &R) -> Result<Finding>
    where
        R: Row,
        usize: ColumnIndex<R>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    {
        let mut values = Vec::with_capacity(self.columns.len());
        for (index, column) in self.columns.iter().enumerate() {
            let value = match column {
                Column::Int => Value::Int(row.try_get(index)?),
                Column::Text => Value::Text(row.try_get(index)?),
                Column::MaybeInt => row
                    .try_get::<Option<i64>, _>(index)?
                    .map_or(Value::Null, Value::Int),
                Column::MaybeText => row
                    .try_get::<Option<String>, _>(index)?
                    .map_or(Value::Null, Value::Text),
            };
            values.push(value);
        }
        Ok(self.word(&values))
    }

    fn word(&self, values: &[Value]) -> Finding {
        Finding::new(&self.name, (self.word)(values))
    }
}

/// Every check, in the order their findings are reported. `bytewise` is what follows a
/// text column in `ORDER BY` for it to sort byte-wise (as SQLite does by default).
pub(super) fn checks(bytewise: &str) -> Vec<Check> {
    let initial = State::ALL
        .iter()
        .copied()
        .find(|state| state.is_initial())
        .map_or("", |state| state.as_str());
    let mut checks = Vec::with_capacity(9);

    // The order row's state is where its audit trail ends; without a trail, an order is
    // in the initial state (split-off children start in their parent's state).
    checks.push(Check::new(
        "state_matches_audit",
        "SELECT o.id, o.state, t.seq, t.to_state \
         FROM orders o \
         LEFT JOIN (SELECT order_id, MAX(seq) AS seq FROM order_transitions GROUP BY order_id) \
             last ON last.order_id = o.id \
         LEFT JOIN order_transitions t ON t.order_id = o.id AND t.seq = last.seq \
         WHERE (t.seq IS NULL AND o.parent_order_id IS NULL AND o.state <> $1) \
            OR (t.seq IS NOT NULL AND t.to_state <> o.state) \
         ORDER BY o.id"
            .to_owned(),
        Some(initial),
        &[Int, Text, MaybeInt, MaybeText],
        move |row| match (&row[2], &row[3]) {
            (Value::Int(seq), Value::Text(to)) => format!(
                "order {order} is in `{state}` but its audit row {seq} moved it to `{to}`",
                order = row[0],
                state = row[1],
            ),
            _ => format!(
                "order {order} is in `{state}` without any audit row (expected `{initial}`)",
                order = row[0],
                state = row[1],
            ),
        },
    ));

    // Sequence numbers are 1..=n. They are unique per order (a constraint), so a minimum
    // of 1 and a maximum equal to the count mean no gaps.
    checks.push(Check::new(
        "audit_sequence",
        "SELECT order_id, COUNT(*), MIN(seq), MAX(seq) FROM order_transitions \
         GROUP BY order_id HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*) \
         ORDER BY order_id"
            .to_owned(),
        None,
        &[Int, Int, Int, Int],
        |row| {
            format!(
                "order {order} has {count} audit rows numbered {min}..={max}, expected 1..={count}",
                order = row[0],
                count = row[1],
                min = row[2],
                max = row[3],
            )
        },
    ));

    // A payment's or a shipment's row is in the state where its own trail ends (rows
    // from before the trails existed have none, and are not checked).
    for (machine, table, kind) in [
        (SHIPMENT, "shipments", "shipment"),
        (PAYMENT, "payments", "payment"),
    ] {
        checks.push(Check::new(
            &format!("{kind}_matches_trail"),
            format!(
                "SELECT e.id, e.state, t.seq, t.to_state \
                 FROM {table} e \
                 JOIN (SELECT entity_id, MAX(seq) AS seq FROM entity_transitions \
                       WHERE machine = $1 GROUP BY entity_id) last ON last.entity_id = e.id \
                 JOIN entity_transitions t \
                     ON t.machine = $1 AND t.entity_id = e.id AND t.seq = last.seq \
                 WHERE t.to_state <> e.state \
                 ORDER BY e.id"
            ),
            Some(machine),
            &[Int, Text, Int, Text],
            move |row| {
                format!(
                    "{kind} {entity} is in `{state}` but its audit row {seq} moved it to `{to}`",
                    entity = row[0],
                    state = row[1],
                    seq = row[2],
                    to = row[3],
                )
            },
        ));
    }

    // An entity's sequence numbers are 1..=n, as an order's are.
    checks.push(Check::new(
        "entity_trail_sequence",
        format!(
            "SELECT machine, entity_id, COUNT(*), MIN(seq), MAX(seq) FROM entity_transitions \
             GROUP BY machine, entity_id HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*) \
             ORDER BY machine{bytewise}, entity_id"
        ),
        None,
        &[Text, Int, Int, Int, Int],
        |row| {
            format!(
                "{machine} {entity} has {count} audit rows numbered {min}..={max}, \
                 expected 1..={count}",
                machine = row[0],
                entity = row[1],
                count = row[2],
                min = row[3],
                max = row[4],
            )
        },
    ));

    // A product's counters are the sums of its ledger.
    checks.push(Check::new(
        "stock_matches_ledger",
        "SELECT p.id, p.sku, p.on_hand, p.reserved, \
             COALESCE(m.on_hand, 0), COALESCE(m.reserved, 0) \
         FROM products p \
         LEFT JOIN (SELECT product_id, CAST(SUM(delta_on_hand) AS BIGINT) AS on_hand, \
                        CAST(SUM(delta_reserved) AS BIGINT) AS reserved \
                    FROM inventory_movements GROUP BY product_id) m ON m.product_id = p.id \
         WHERE p.on_hand <> COALESCE(m.on_hand, 0) OR p.reserved <> COALESCE(m.reserved, 0) \
         ORDER BY p.id"
            .to_owned(),
        None,
        &[Int, Text, Int, Int, Int, Int],
        |row| {
            format!(
                "product {id} `{sku}` has on_hand {on_hand}, reserved {reserved}; \
                 its ledger sums to on_hand {ledger_on_hand}, reserved {ledger_reserved}",
                id = row[0],
                sku = row[1],
                on_hand = row[2],
                reserved = row[3],
                ledger_on_hand = row[4],
                ledger_reserved = row[5],
            )
        },
    ));

    // The CHECK constraint makes this impossible; verify anyway.
    checks.push(Check::new(
        "reserved_within_on_hand",
        "SELECT id, sku, on_hand, reserved FROM products \
         WHERE reserved < 0 OR reserved > on_hand ORDER BY id"
            .to_owned(),
        None,
        &[Int, Text, Int, Int],
        |row| {
            format!(
                "product {id} `{sku}` has reserved {reserved} outside 0..={on_hand}",
                id = row[0],
                sku = row[1],
                on_hand = row[2],
                reserved = row[3],
            )
        },
    ));

    // No order has released or shipped more of a product than it reserved.
    checks.push(Check::new(
        "order_reservation_negative",
        "SELECT order_id, product_id, CAST(SUM(delta_reserved) AS BIGINT) \
         FROM inventory_movements \
         WHERE order_id IS NOT NULL GROUP BY order_id, product_id \
         HAVING SUM(delta_reserved) < 0 ORDER BY order_id, product_id"
            .to_owned(),
        None,
        &[Int, Int, Int],
        |row| {
            format!(
                "order {order} holds {held} of product {product} reserved",
                order = row[0],
                product = row[1],
                held = row[2],
            )
        },
    ));

    // Every reserved unit is held by some order: movements without an order never
    // change `reserved`.
    checks.push(Check::new(
        "reservations_match_orders",
        "SELECT product_id, CAST(SUM(delta_reserved) AS BIGINT) FROM inventory_movements \
         WHERE order_id IS NULL GROUP BY product_id \
         HAVING SUM(delta_reserved) <> 0 ORDER BY product_id"
            .to_owned(),
        None,
        &[Int, Int],
        |row| {
            format!(
                "product {product} has {unheld} reserved by movements of no order",
                product = row[0],
                unheld = row[1],
            )
        },
    ));

    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of `columns` whose values tell the columns apart: the integer `10 + i` or
    /// the text `t{i}` in column `i`.
    fn sample(columns: &[Column]) -> Vec<Value> {
        (0..)
            .zip(columns)
            .map(|(i, column)| match column {
                Int | MaybeInt => Value::Int(10 + i),
                Text | MaybeText => Value::Text(format!("t{i}")),
            })
            .collect()
    }

    #[test]
    fn every_check_words_its_columns_in_place() {
        let expected = [
            (
                "state_matches_audit",
                "order 10 is in `t1` but its audit row 12 moved it to `t3`",
            ),
            (
                "audit_sequence",
                "order 10 has 11 audit rows numbered 12..=13, expected 1..=11",
            ),
            (
                "shipment_matches_trail",
                "shipment 10 is in `t1` but its audit row 12 moved it to `t3`",
            ),
            (
                "payment_matches_trail",
                "payment 10 is in `t1` but its audit row 12 moved it to `t3`",
            ),
            (
                "entity_trail_sequence",
                "t0 11 has 12 audit rows numbered 13..=14, expected 1..=12",
            ),
            (
                "stock_matches_ledger",
                "product 10 `t1` has on_hand 12, reserved 13; \
                 its ledger sums to on_hand 14, reserved 15",
            ),
            (
                "reserved_within_on_hand",
                "product 10 `t1` has reserved 13 outside 0..=12",
            ),
            (
                "order_reservation_negative",
                "order 10 holds 12 of product 11 reserved",
            ),
            (
                "reservations_match_orders",
                "product 10 has 11 reserved by movements of no order",
            ),
        ];
        let checks = checks("");
        let worded: Vec<(String, String)> = checks
            .iter()
            .map(|check| {
                let finding = check.word(&sample(check.columns));
                (finding.check, finding.detail)
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(check, detail)| ((*check).to_owned(), (*detail).to_owned()))
            .collect();
        assert_eq!(worded, expected);
        for check in &checks {
            assert_eq!(
                check.sql.contains("$1"),
                check.bind.is_some(),
                "{}",
                check.name
            );
        }
    }

    #[test]
    fn an_order_without_a_trail_is_worded_apart() {
        let check = &checks("")[0];
        let row = [
            Value::Int(7),
            Value::Text("paid".to_owned()),
            Value::Null,
            Value::Null,
        ];
        let initial = check.bind.expect("the initial state");
        assert_eq!(
            check.word(&row).detail,
            format!("order 7 is in `paid` without any audit row (expected `{initial}`)")
        );
    }
}
