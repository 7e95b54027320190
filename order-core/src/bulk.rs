//! One event on many orders: each order through the full pipeline with its own result,
//! so that one order's failure never changes another's outcome.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::StoreError;
use crate::query::OrderQuery;
use crate::types::{Command, OrderId, Outcome};

/// Which orders a bulk operation touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkTarget {
    Ids(Vec<OrderId>),
    /// The orders matching the query when the operation starts.
    Query(OrderQuery),
}

/// How a bulk operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkOptions {
    /// Check every order (candidates, authorization, window, guards) without changing
    /// anything.
    pub dry_run: bool,
    /// Orders fetched per page of the query and fired per batch.
    pub batch_size: usize,
}

impl Default for BulkOptions {
    fn default() -> BulkOptions {
        BulkOptions {
            dry_run: false,
            batch_size: 500,
        }
    }
}

/// One order's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkItem {
    pub order: OrderId,
    /// `fired`, `would_fire`, or the error's kind (`guard_failed`, ...).
    pub outcome: String,
    /// The transition made (or that would be made).
    pub transition: Option<Outcome>,
    /// Why the order was refused.
    pub error: Option<String>,
}

/// Every order's result and the number of orders per outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BulkReport {
    pub items: Vec<BulkItem>,
    pub counts: BTreeMap<String, usize>,
}

impl BulkReport {
    fn push(&mut self, item: BulkItem) {
        *self.counts.entry(item.outcome.clone()).or_insert(0) += 1;
        self.items.push(item);
    }

    /// How many orders ended with `outcome`.
    pub fn count(&self, outcome: &str) -> usize {
        self.counts.get(outcome).copied().unwrap_or(0)
    }
}

fn item(
    order: OrderId,
    result: Result<Outcome, crate::error::FireError>,
    dry_run: bool,
) -> BulkItem {
    match result {
        Ok(outcome) => BulkItem {
            order,
            outcome: if dry_run { "would_fire" } else { "fired" }.to_owned(),
            transition: Some(outcome),
            error: None,
        },
        Err(error) => BulkItem {
            order,
            outcome: error.kind().to_owned(),
            transition: None,
            error: Some(error.to_string()),
        },
    }
}

impl Engine {
    /// Fires `command` at every target order, in id order and in batches. A command
    /// with an idempotency key gives each order the key `KEY:ORDER`, so that running
    /// the same bulk operation again replays instead of repeating.
    pub async fn bulk(
        &self,
        target: &BulkTarget,
        command: &Command,
        options: BulkOptions,
    ) -> Result<BulkReport, StoreError> {
        let ids = self.target_ids(target, options.batch_size).await?;
        let mut report = BulkReport::default();
        // Without a key, each batch runs in one transaction (one savepoint per order);
        // a keyed command and a dry run take the one-order-at-a-time pipeline, which
        // replays keys and rolls every order back.
        if !options.dry_run && command.idempotency_key.is_none() {
            for batch in ids.chunks(options.batch_size.max(1)) {
                for (id, result) in self.fire_batch(batch, command).await {
                    report.push(item(id, result, false));
                }
            }
            return Ok(report);
        }
        for batch in ids.chunks(options.batch_size.max(1)) {
            for &id in batch {
                let mut command = command.clone();
                if let Some(key) = &command.idempotency_key {
                    command.idempotency_key = Some(format!("{key}:{id}"));
                }
                let result = if options.dry_run {
                    self.check(id, &command).await
                } else {
                    self.fire(id, command).await
                };
                report.push(item(id, result, options.dry_run));
            }
        }
        Ok(report)
    }

    async fn target_ids(
        &self,
        target: &BulkTarget,
        page: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        match target {
            BulkTarget::Ids(ids) => {
                let mut ids = ids.clone();
                ids.sort();
                ids.dedup();
                Ok(ids)
            }
            BulkTarget::Query(query) => {
                let page = i64::try_from(page.max(1)).unwrap_or(i64::MAX);
                let mut ids = Vec::new();
                let mut query = query.clone();
                let limit = query.limit;
                loop {
                    let remaining = limit.map(|l| l - ids.len() as i64);
                    query.limit = Some(remaining.map_or(page, |r| r.min(page)));
                    if query.limit <= Some(0) {
                        break;
                    }
                    let orders = self.store.list(&query).await?;
                    let Some(last) = orders.last() else { break };
                    query.after = Some(last.id);
                    let full = orders.len() as i64 == query.limit.unwrap_or(page);
                    ids.extend(orders.iter().map(|o| o.id));
                    if !full {
                        break;
                    }
                }
                Ok(ids)
            }
        }
    }
}
