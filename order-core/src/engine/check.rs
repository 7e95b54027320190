//! A dry run of the pipeline, for `bulk --dry-run` and for telling an actor what they
//! may fire now.

use statemachine::Machine as _;

use super::Engine;
use super::fire::{Spec, authorize, choose, not_allowed};
use super::rules::Step;
use crate::error::{FireError, Step as Stage};
use crate::order::Machine;
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
        let order = tx
            .lock_order(id)
            .await
            .map_err(FireError::store(Stage::Lock))?
            .ok_or(FireError::OrderNotFound(id))?;
        let candidates = Machine::candidates(order.state, command.event);
        if candidates.is_empty() {
            return Err(FireError::InvalidTransition {
                state: order.state,
                event: command.event,
                actor: command.actor.kind,
                available: Machine::available_events(order.state, command.actor.kind).to_vec(),
            });
        }
        let listed: Vec<&'static Spec> = candidates
            .iter()
            .filter(|spec| spec.rule_for(command.actor.kind).is_some())
            .collect();
        if listed.is_empty() {
            return Err(not_allowed(&order, command, candidates));
        }
        authorize(&order, command, staff_role)?;
        let items = tx.items(id).await.map_err(FireError::store(Stage::Lock))?;
        let seq = tx
            .last_seq(id)
            .await
            .map_err(FireError::store(Stage::Lock))?
            + 1;
        let from = order.state;
        let mut step = Step {
            tx: tx.as_mut(),
            engine: self,
            order,
            items,
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
