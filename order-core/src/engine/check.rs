//! A dry run of the pipeline, for `bulk --dry-run` and for telling an actor what they
//! may fire now.

use super::Engine;
use super::fire::{choose, listed};
use super::rules::Step;
use crate::error::{FireError, Step as Stage};
use crate::types::{Command, OrderId, Outcome};

impl Engine {
    /// What `fire` would do, without doing it: the candidates, authorization, window
    /// and guard steps in a transaction that is rolled back. Actions are not run, since
    /// they reach outside the database.
    pub async fn check(&self, id: OrderId, command: &Command) -> Result<Outcome, FireError> {
        let now = self.clock.now();
        let staff_role = self.staff_role(command).await?;
        let mut tx = self
            .store
            .begin()
            .await
            .map_err(FireError::store(Stage::Lock))?;
        let (order, reads) = tx
            .lock_for_transition(id)
            .await
            .map_err(FireError::store(Stage::Lock))?
            .ok_or(FireError::OrderNotFound(id))?;
        let listed = listed(&order, command, staff_role)?;
        let (from, seq) = (order.state, reads.last_seq + 1);
        let mut step = Step {
            tx: tx.as_mut(),
            engine: self,
            order,
            items: reads.items,
            stock: reads.stock,
            command,
            seq,
            now,
            effects: Vec::new(),
            undoing: false,
        };
        let spec = choose(&mut step, &listed).await?;
        drop(step);
        tx.rollback()
            .await
            .map_err(FireError::store(Stage::Commit))?;
        Ok(Outcome {
            order: id,
            event: command.event,
            from,
            to: spec.to,
            seq,
            is_override: spec.is_override,
            replayed: false,
        })
    }
}
