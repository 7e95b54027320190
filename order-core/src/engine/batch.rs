//! Bulk in batches: one transaction for many orders, each order's steps after a
//! savepoint of its own, so that one order's refusal is rolled back alone and never
//! changes another's outcome. Orders, lines and sequence numbers are read for the whole
//! batch at once, the order rows, audit rows and outbox rows written at once, and the
//! batch commits once; what is left per order is what only that order can answer (its
//! guards and actions).

use std::collections::HashMap;

use super::Engine;
use super::fire::{Failure, Planned, choose, listed, plan, run_actions};
use super::rules::Step;
use crate::error::{FireError, Step as Stage};
use crate::types::{Command, OrderId, Outcome};

type Results = Vec<(OrderId, Result<Outcome, FireError>)>;

/// An order whose steps passed: its undo actions and where it stood, in case the batch
/// fails later.
type Passed = (
    Vec<(crate::order::Action, Vec<super::Effect>)>,
    crate::types::Order,
    i64,
);

impl Engine {
    /// Fires `command` at `ids` (sorted, distinct) in one transaction; every order gets
    /// the result `fire` would have given it. Refusals and failures are recorded as
    /// attempts and their external effects undone, as `fire` does.
    pub(crate) async fn fire_batch(&self, ids: &[OrderId], command: &Command) -> Results {
        let mut failures: Vec<(OrderId, Failure)> = Vec::new();
        let mut passed: Vec<Passed> = Vec::new();
        let mut results = match self
            .run_batch(ids, command, &mut failures, &mut passed)
            .await
        {
            Ok(results) => results,
            Err(error) => {
                // The batch as a whole failed (a batched read or write, the commit):
                // nothing of it stays, so the orders that had passed fail too, and what
                // their actions did outside the database is undone.
                for (undo, order, seq) in passed {
                    let failure = Failure {
                        error: batch_failed(&error),
                        undo,
                        order: Some(order.clone()),
                        seq,
                    };
                    failures.push((order.id, failure));
                }
                let untouched = ids
                    .iter()
                    .filter(|id| !failures.iter().any(|(f, _)| f == *id));
                let untouched: Vec<OrderId> = untouched.copied().collect();
                for id in untouched {
                    failures.push((id, Failure::from(batch_failed(&error))));
                }
                Vec::new()
            }
        };
        for (id, failure) in failures {
            let error = self.fail(id, command, failure).await;
            results.push((id, Err(error)));
        }
        results.sort_by_key(|(id, _)| *id);
        results
    }

    async fn run_batch(
        &self,
        ids: &[OrderId],
        command: &Command,
        failures: &mut Vec<(OrderId, Failure)>,
        passed: &mut Vec<Passed>,
    ) -> Result<Results, FireError> {
        let now = self.clock.now();
        let staff_role = self.staff_role(command).await?;
        let mut tx = self
            .store
            .begin()
            .await
            .map_err(FireError::store(Stage::Lock))?;
        let orders = tx
            .lock_orders(ids)
            .await
            .map_err(FireError::store(Stage::Lock))?;
        let mut lines: HashMap<OrderId, Vec<_>> = HashMap::new();
        for item in tx
            .items_of(ids)
            .await
            .map_err(FireError::store(Stage::Lock))?
        {
            lines.entry(item.order).or_default().push(item);
        }
        let seqs: HashMap<OrderId, i64> = tx
            .last_seqs(ids)
            .await
            .map_err(FireError::store(Stage::Lock))?
            .into_iter()
            .collect();
        for id in ids.iter().filter(|id| !orders.iter().any(|o| o.id == **id)) {
            failures.push((*id, Failure::from(FireError::OrderNotFound(*id))));
        }
        let mut planned: Vec<Planned> = Vec::new();
        for order in orders {
            let id = order.id;
            let specs = match listed(&order, command, staff_role) {
                Ok(specs) => specs,
                Err(error) => {
                    failures.push((id, Failure::from(error)));
                    continue;
                }
            };
            tx.savepoint()
                .await
                .map_err(FireError::store(Stage::Lock))?;
            let seq = seqs.get(&id).copied().unwrap_or(0) + 1;
            let mut step = Step {
                tx: tx.as_mut(),
                engine: self,
                order,
                items: lines.remove(&id).unwrap_or_default(),
                stock: None,
                command,
                seq,
                now,
                effects: Vec::new(),
                undoing: false,
            };
            let mut undo = Vec::new();
            let outcome = match choose(&mut step, &specs).await {
                Ok(spec) => run_actions(&mut step, spec, &mut undo).await.map(|()| spec),
                Err(error) => Err(error),
            };
            let order = step.order.clone();
            drop(step);
            match outcome {
                Ok(spec) => {
                    planned.push(plan(&order, command, spec, seq));
                    passed.push((undo, order, seq));
                    tx.release_savepoint()
                        .await
                        .map_err(FireError::store(Stage::Actions))?;
                }
                Err(error) => {
                    tx.rollback_to_savepoint()
                        .await
                        .map_err(FireError::store(Stage::Actions))?;
                    failures.push((
                        id,
                        Failure {
                            error,
                            undo,
                            order: Some(order),
                            seq,
                        },
                    ));
                }
            }
        }
        let rows: Vec<_> = planned.iter().map(|p| p.row(command, now)).collect();
        let messages: Vec<_> = planned.iter().flat_map(|p| p.outbox(now)).collect();
        let next: Vec<_> = planned.iter().map(|p| p.order.clone()).collect();
        let stale = tx
            .update_orders(&next, now)
            .await
            .map_err(FireError::store(Stage::Write))?;
        if let Some(id) = stale.first() {
            return Err(FireError::Conflict {
                order: *id,
                expected: 0,
            });
        }
        tx.append_transitions(&rows)
            .await
            .map_err(FireError::store(Stage::Write))?;
        tx.enqueue_all(&messages)
            .await
            .map_err(FireError::store(Stage::Write))?;
        drop((rows, messages));
        tx.commit().await.map_err(FireError::store(Stage::Commit))?;
        Ok(planned
            .into_iter()
            .map(|p| (p.outcome.order, Ok(p.outcome)))
            .collect())
    }
}

/// An order's error when its batch failed as a whole.
fn batch_failed(error: &FireError) -> FireError {
    FireError::Store {
        step: error.step(),
        source: crate::error::StoreError::Invalid(format!("the batch failed: {error}")),
    }
}
