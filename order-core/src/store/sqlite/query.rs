//! `OrderQuery` as SQL on SQLite: the shared builders of `store::order_query`, run on
//! the pool, with SQLite's [`Dialect`].

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::order::State;
use crate::query::OrderQuery;
use crate::store::Result;
use crate::store::order_query::{self, Dialect};
use crate::types::Order;

use super::rows;

impl Dialect for Sqlite {
    /// SQLite's default collation, BINARY, compares bytes.
    const BYTEWISE: &'static str = "";

    /// The state set is an `IN` list of one parameter per state, so that the
    /// `(state, updated_at)` index can serve it (and an updated range with it).
    fn push_state_set(builder: &mut QueryBuilder<'_, Sqlite>, states: &[State], negated: bool) {
        builder.push(if negated {
            "o.state NOT IN ("
        } else {
            "o.state IN ("
        });
        let mut list = builder.separated(", ");
        for state in states {
            list.push_bind(state.as_str());
        }
        builder.push(")");
    }
}

/// The list query of `query`, its SQL text starting with `prefix` (e.g.
/// `EXPLAIN QUERY PLAN `).
pub(super) fn list_query<'a>(
    prefix: &str,
    query: &'a OrderQuery,
) -> Result<QueryBuilder<'a, Sqlite>> {
    order_query::list_query(rows::select_orders(prefix), query)
}

pub(super) async fn list(pool: &SqlitePool, query: &OrderQuery) -> Result<Vec<Order>> {
    let mut builder = list_query("", query)?;
    let rows = builder.build().fetch_all(pool).await?;
    rows.iter().map(rows::order_from_row).collect()
}

/// Counts per state of the orders matching `query` (its `limit` does not apply), in
/// `State::ALL` order, states with none left out.
pub(super) async fn count_by_state(
    pool: &SqlitePool,
    query: &OrderQuery,
) -> Result<Vec<(State, i64)>> {
    let mut builder = order_query::count_query::<Sqlite>(query);
    let counts: Vec<(String, i64)> = builder.build_query_as().fetch_all(pool).await?;
    order_query::in_state_order(&counts, |state| rows::parse("orders.state", state))
}

/// Orders per payment status and per fulfillment status, each ordered by status.
pub(super) async fn count_by_status(
    pool: &SqlitePool,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
    let payment = order_query::count_by_status_sql::<Sqlite>("payment_status");
    let fulfillment = order_query::count_by_status_sql::<Sqlite>("fulfillment_status");
    let payment = sqlx::query_as(&payment).fetch_all(pool).await?;
    let fulfillment = sqlx::query_as(&fulfillment).fetch_all(pool).await?;
    Ok((payment, fulfillment))
}
