//! SQLite's own reads: the query plans of the order list. What the reads return is the
//! `Store` conformance suite's, run on every adapter.

use super::tests::{at, store};
use crate::order::State;
use crate::query::OrderQuery;
use crate::types::OrderId;

/// The list query of a state set, alone or with a range and a page, uses the state index.
#[tokio::test]
async fn the_state_query_uses_the_state_index() {
    let store = store().await;
    for query in [
        OrderQuery::new().in_states(&[State::Paid, State::Processing]),
        OrderQuery::new()
            .in_states(&[State::Paid])
            .updated_between(at(0), at(10))
            .after(OrderId(5))
            .limit(50),
    ] {
        let mut builder = super::query::list_query("EXPLAIN QUERY PLAN ", &query).expect("build");
        let plan: Vec<(i64, i64, i64, String)> = builder
            .build_query_as()
            .fetch_all(store.pool())
            .await
            .expect("explain");
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("USING INDEX orders_state_updated")),
            "{details:#?}"
        );
    }
}
