//! What happens when a transition fails: the completed external effects are undone
//! and the attempt is recorded.

use super::Engine;
use super::fire::Failure;
use super::rules::{Rules, Step};
use crate::error::{FireError, Step as Stage};
use crate::order::Actions as _;
use crate::types::{Attempt, Command, Order, OrderId};

impl Engine {
    /// Rolls back (the transaction is dropped with the failure), undoes completed
    /// external effects in reverse order, and records the attempt.
    pub(super) async fn fail(&self, id: OrderId, command: &Command, failure: Failure) -> FireError {
        let Failure {
            error,
            undo,
            order,
            seq,
        } = failure;
        let mut error_text = error.to_string();
        if !undo.is_empty()
            && let Some(order) = order
        {
            match self.undo(order, command, seq, undo).await {
                Ok(done) => error_text.push_str(&format!("; undone: {}", done.join(", "))),
                Err(undo_error) => error_text.push_str(&format!("; undo failed: {undo_error}")),
            }
        }
        let attempt = Attempt {
            order: id,
            event: command.event,
            actor_kind: command.actor.kind,
            actor_id: command.actor.id.clone(),
            error_kind: format!("{}:{}", error.step(), error.kind()),
            error: error_text,
            at: self.clock.now(),
        };
        if !matches!(error, FireError::OrderNotFound(_))
            && let Err(record_error) = self.store.record_attempt(&attempt).await
        {
            tracing::error!(%record_error, order = %id, "could not record a failed attempt");
        }
        error
    }

    /// Runs the undo actions in reverse order in a transaction of their own.
    async fn undo(
        &self,
        order: Order,
        command: &Command,
        seq: i64,
        undo: Vec<(crate::order::Action, Vec<super::Effect>)>,
    ) -> Result<Vec<String>, FireError> {
        let mut tx = self
            .store
            .begin()
            .await
            .map_err(FireError::store(Stage::Actions))?;
        let order = tx
            .lock_order(order.id)
            .await
            .map_err(FireError::store(Stage::Actions))?
            .unwrap_or(order);
        let items = tx
            .items(order.id)
            .await
            .map_err(FireError::store(Stage::Actions))?;
        let order_id = order.id;
        let mut done = Vec::new();
        let mut effects_to_compensate = Vec::new();
        {
            let mut step = Step {
                tx: tx.as_mut(),
                engine: self,
                order,
                items,
                stock: None,
                command,
                seq,
                now: self.clock.now(),
                effects: Vec::new(),
                undoing: true,
            };
            for (action, effects) in undo.into_iter().rev() {
                step.effects = effects;
                Rules::new().run(action, &mut step).await?;
                effects_to_compensate.extend(std::mem::take(&mut step.effects));
                done.push(action.to_string());
            }
            let order = step.order.clone();
            let written = step
                .tx
                .update_order(&order, step.now)
                .await
                .map_err(FireError::store(Stage::Actions))?;
            if !written {
                return Err(FireError::Conflict {
                    order: order.id,
                    expected: order.version,
                });
            }
        }
        tx.commit()
            .await
            .map_err(FireError::store(Stage::Actions))?;
        // The undo is recorded; now the money goes back.
        for effect in &effects_to_compensate {
            self.compensate(order_id, effect).await?;
        }
        Ok(done)
    }
}
