//! `OrderQuery` as SQL: every field becomes a bound condition, never interpolated text.

use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::error::StoreError;
use crate::order::State;
use crate::query::OrderQuery;
use crate::store::Result;
use crate::types::Order;

use super::rows;

/// Pushes ` WHERE ` before the first condition and ` AND ` before the others.
struct Conditions<'q, 'a> {
    builder: &'q mut QueryBuilder<'a, Postgres>,
    any: bool,
}

impl<'a> Conditions<'_, 'a> {
    fn next(&mut self) -> &mut QueryBuilder<'a, Postgres> {
        self.builder
            .push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
        self.builder
    }
}

fn names(states: &[State]) -> Vec<&'static str> {
    states.iter().map(|state| state.as_str()).collect()
}

/// Appends the WHERE clause of `query` (every field but `limit`), on `orders o`.
///
/// A state set is one array parameter (`o.state = ANY($n)`), so that the statement's
/// text, and its prepared plan, do not depend on how many states are asked for; the
/// `(state, updated_at)` index serves it (and an updated range with it).
fn push_filters<'a>(builder: &mut QueryBuilder<'a, Postgres>, query: &'a OrderQuery) {
    let mut conditions = Conditions {
        builder,
        any: false,
    };
    if !query.states.is_empty() {
        conditions
            .next()
            .push("o.state = ANY(")
            .push_bind(names(&query.states))
            .push(")");
    }
    if !query.not_states.is_empty() {
        conditions
            .next()
            .push("o.state <> ALL(")
            .push_bind(names(&query.not_states))
            .push(")");
    }
    if let Some(email) = &query.customer {
        conditions
            .next()
            .push("o.customer_id = (SELECT id FROM customers WHERE email = ")
            .push_bind(email.as_str())
            .push(")");
    }
    if let Some(from) = query.created_from {
        conditions.next().push("o.created_at >= ").push_bind(from);
    }
    if let Some(to) = query.created_to {
        conditions.next().push("o.created_at < ").push_bind(to);
    }
    if let Some(from) = query.updated_from {
        conditions.next().push("o.updated_at >= ").push_bind(from);
    }
    if let Some(to) = query.updated_to {
        conditions.next().push("o.updated_at < ").push_bind(to);
    }
    if let Some(status) = query.payment_status {
        conditions
            .next()
            .push("o.payment_status = ")
            .push_bind(status.as_str());
    }
    if let Some(status) = query.fulfillment_status {
        conditions
            .next()
            .push("o.fulfillment_status = ")
            .push_bind(status.as_str());
    }
    if let Some(after) = query.after {
        conditions.next().push("o.id > ").push_bind(after.0);
    }
}

/// The list query of `query`, its SQL text starting with `prefix` (e.g. `EXPLAIN `).
pub(super) fn list_query<'a>(
    prefix: &str,
    query: &'a OrderQuery,
) -> Result<QueryBuilder<'a, Postgres>> {
    let mut builder = QueryBuilder::new(rows::select_orders(prefix));
    push_filters(&mut builder, query);
    builder.push(" ORDER BY o.id");
    if let Some(limit) = query.limit {
        if limit < 0 {
            return Err(StoreError::Invalid(format!(
                "a query limit cannot be negative, got {limit}"
            )));
        }
        builder.push(" LIMIT ").push_bind(limit);
    }
    Ok(builder)
}

pub(super) async fn list(pool: &PgPool, query: &OrderQuery) -> Result<Vec<Order>> {
    let mut builder = list_query("", query)?;
    let rows = builder.build().fetch_all(pool).await?;
    rows.iter().map(rows::order_from_row).collect()
}

/// Counts per state of the orders matching `query` (its `limit` does not apply), in
/// `State::ALL` order, states with none left out.
pub(super) async fn count_by_state(pool: &PgPool, query: &OrderQuery) -> Result<Vec<(State, i64)>> {
    let mut builder = QueryBuilder::new("SELECT o.state, COUNT(*) FROM orders o");
    push_filters(&mut builder, query);
    builder.push(" GROUP BY o.state");
    let counts: Vec<(String, i64)> = builder.build_query_as().fetch_all(pool).await?;
    let mut counts = counts
        .iter()
        .map(|(state, n)| Ok((rows::parse::<State>("orders.state", state)?, *n)))
        .collect::<Result<Vec<_>>>()?;
    counts.sort_by_key(|(state, _)| State::ALL.iter().position(|s| s == state));
    Ok(counts)
}

/// Orders per payment status and per fulfillment status, each ordered by status
/// byte-wise (as SQLite orders text), whatever the database's collation.
pub(super) async fn count_by_status(
    conn: &mut PgConnection,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
    let payment = sqlx::query_as(
        "SELECT payment_status, COUNT(*) FROM orders \
         GROUP BY payment_status ORDER BY payment_status COLLATE \"C\"",
    )
    .fetch_all(&mut *conn)
    .await?;
    let fulfillment = sqlx::query_as(
        "SELECT fulfillment_status, COUNT(*) FROM orders \
         GROUP BY fulfillment_status ORDER BY fulfillment_status COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    Ok((payment, fulfillment))
}
