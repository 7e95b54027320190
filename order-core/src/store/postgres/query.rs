//! `OrderQuery` as SQL on PostgreSQL: the shared builders of `store::order_query`, run
//! on the pool, with PostgreSQL's [`Dialect`].

use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::order::State;
use crate::query::OrderQuery;
use crate::store::Result;
use crate::store::order_query::{self, Dialect};
use crate::types::Order;

use super::rows;

impl Dialect for Postgres {
    /// The database's collation may not compare bytes; SQLite's default does, and both
    /// adapters order text alike.
    const BYTEWISE: &'static str = " COLLATE \"C\"";

    /// A state set is one array parameter (`o.state = ANY($n)`), so that the
    /// statement's text, and its prepared plan, do not depend on how many states are
    /// asked for; the `(state, updated_at)` index serves it (and an updated range with
    /// it).
    fn push_state_set(builder: &mut QueryBuilder<'_, Postgres>, states: &[State], negated: bool) {
        let names: Vec<&'static str> = states.iter().map(|state| state.as_str()).collect();
        builder
            .push(if negated {
                "o.state <> ALL("
            } else {
                "o.state = ANY("
            })
            .push_bind(names)
            .push(")");
    }
}

pub(super) async fn list(pool: &PgPool, query: &OrderQuery) -> Result<Vec<Order>> {
    let mut builder = order_query::list_query::<Postgres>(rows::select_orders(""), query)?;
    let rows = builder.build().fetch_all(pool).await?;
    rows.iter().map(rows::order_from_row).collect()
}

/// Counts per state of the orders matching `query` (its `limit` does not apply), in
/// `State::ALL` order, states with none left out.
pub(super) async fn count_by_state(pool: &PgPool, query: &OrderQuery) -> Result<Vec<(State, i64)>> {
    let mut builder = order_query::count_query::<Postgres>(query);
    let counts: Vec<(String, i64)> = builder.build_query_as().fetch_all(pool).await?;
    order_query::in_state_order(&counts, |state| rows::parse("orders.state", state))
}

/// Orders per payment status and per fulfillment status, each ordered by status
/// byte-wise (as SQLite orders text), whatever the database's collation.
pub(super) async fn count_by_status(
    conn: &mut PgConnection,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
    let payment = order_query::count_by_status_sql::<Postgres>("payment_status");
    let fulfillment = order_query::count_by_status_sql::<Postgres>("fulfillment_status");
    let payment = sqlx::query_as(&payment).fetch_all(&mut *conn).await?;
    let fulfillment = sqlx::query_as(&fulfillment).fetch_all(conn).await?;
    Ok((payment, fulfillment))
}
