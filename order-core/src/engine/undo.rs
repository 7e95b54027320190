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
            if let Err(err) = super::rules::compensate(self, effect).await {
                self.reinstate(order_id, effect).await;
                return Err(err);
            }
        }
        Ok(done)
    }

    /// A refund of a failed transition's capture did not go through: when the
    /// processor's books say the money is still captured, the payment row goes back to
    /// `authorized`, so that a retried `pay` claims that capture (its key replays it)
    /// instead of charging again. When the books cannot be read, the row stays marked
    /// for refund and reconciliation settles it.
    async fn reinstate(&self, order: OrderId, effect: &super::Effect) {
        let super::Effect::Captured {
            payment,
            reference,
            amount_cents,
            ..
        } = effect;
        let still_captured = match self.payments.balance(reference).await {
            Ok(balance) => balance.captured_cents - balance.refunded_cents >= *amount_cents,
            Err(_) => false,
        };
        if !still_captured {
            return;
        }
        let result: Result<(), crate::error::StoreError> = async {
            let mut tx = self.store.begin().await?;
            let Some(mut row) = tx
                .payments(order)
                .await?
                .into_iter()
                .find(|p| p.id == *payment)
            else {
                return Ok(());
            };
            row.state = "authorized".to_owned();
            row.failure_code = None;
            let now = self.clock.now();
            tx.update_payment(&row, now).await?;
            if let Some(mut locked) = tx.lock_order(order).await? {
                locked.payment_status =
                    super::rollup::current_payment_status(tx.as_mut(), order).await?;
                tx.update_order(&locked, now).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(error) = result {
            tracing::error!(%error, %order, "could not reinstate a payment whose refund failed");
        }
    }
}
