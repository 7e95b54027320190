//! `OrderQuery` as SQL, written once for both adapters: every field becomes a bound
//! condition, never interpolated text.
//!
//! The builders are generic over the database, so that each adapter gets a
//! `QueryBuilder` of its own (placeholders in its style) and runs it on its own pool.
//! What differs between the databases is the [`Dialect`] each adapter implements.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::error::StoreError;
use crate::order::State;
use crate::query::OrderQuery;
use crate::store::Result;

/// What an adapter's SQL does its own way.
pub(super) trait Dialect: Database {
    /// What follows a text column in `ORDER BY` for it to sort byte-wise, whatever the
    /// database's collation (SQLite's default collation already does).
    const BYTEWISE: &'static str;

    /// Appends the condition that `o.state` is one of `states` or, when `negated`,
    /// none of them (`states` is never empty).
    fn push_state_set(builder: &mut QueryBuilder<'_, Self>, states: &[State], negated: bool);
}

/// Pushes ` WHERE ` before the first condition and ` AND ` before the others.
struct Conditions<'q, 'a, DB: Database> {
    builder: &'q mut QueryBuilder<'a, DB>,
    any: bool,
}

impl<'a, DB: Database> Conditions<'_, 'a, DB> {
    fn next(&mut self) -> &mut QueryBuilder<'a, DB> {
        self.builder
            .push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
        self.builder
    }
}

/// Appends the WHERE clause of `query` (every field but `limit`), on `orders o`.
fn push_filters<'a, DB>(builder: &mut QueryBuilder<'a, DB>, query: &'a OrderQuery)
where
    DB: Dialect,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    let mut conditions = Conditions {
        builder,
        any: false,
    };
    if !query.states.is_empty() {
        DB::push_state_set(conditions.next(), &query.states, false);
    }
    if !query.not_states.is_empty() {
        DB::push_state_set(conditions.next(), &query.not_states, true);
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

/// The list query of `query`: `select` (the adapter's `SELECT` of order rows from
/// `orders o`), the filters, id order and the limit.
pub(super) fn list_query<'a, DB>(
    select: String,
    query: &'a OrderQuery,
) -> Result<QueryBuilder<'a, DB>>
where
    DB: Dialect,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(select);
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

/// The query of how many orders match `query` per state (its `limit` does not apply):
/// rows of the state's name and its count, to be put in order by [`in_state_order`].
pub(super) fn count_query<'a, DB>(query: &'a OrderQuery) -> QueryBuilder<'a, DB>
where
    DB: Dialect,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new("SELECT o.state, COUNT(*) FROM orders o");
    push_filters(&mut builder, query);
    builder.push(" GROUP BY o.state");
    builder
}

/// The rows of [`count_query`] as states (read by `parse`), in `State::ALL` order.
pub(super) fn in_state_order(
    counts: &[(String, i64)],
    parse: impl Fn(&str) -> Result<State>,
) -> Result<Vec<(State, i64)>> {
    let mut counts = counts
        .iter()
        .map(|(state, n)| Ok((parse(state)?, *n)))
        .collect::<Result<Vec<_>>>()?;
    counts.sort_by_key(|(state, _)| State::ALL.iter().position(|s| s == state));
    Ok(counts)
}

/// The query of how many orders have each value of `column` (`payment_status` or
/// `fulfillment_status`), ordered by the value byte-wise on both databases.
pub(super) fn count_by_status_sql<DB: Dialect>(column: &str) -> String {
    format!(
        "SELECT {column}, COUNT(*) FROM orders GROUP BY {column} ORDER BY {column}{}",
        DB::BYTEWISE
    )
}
