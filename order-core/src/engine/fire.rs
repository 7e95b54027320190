//! `Engine::fire`: one command through the nine steps of the pipeline.

use statemachine::{ActorClass, Machine as _, TransitionSpec};

use super::Engine;
use super::machine::{self, Unchosen};
use super::rules::{Rules, Step};
use crate::error::{FireError, Step as Stage};
use crate::order::{Actions as _, Guards as _, Machine};
use crate::store::{NewMessage, NewTransition, StoreTx};
use crate::types::{Command, Order, OrderId, Outcome};

pub(super) type Spec = TransitionSpec<Machine>;

/// A failure and the external effects completed before it, which must be undone.
pub(super) struct Failure {
    pub(super) error: FireError,
    pub(super) undo: Vec<(crate::order::Action, Vec<super::Effect>)>,
    pub(super) order: Option<Order>,
    pub(super) seq: i64,
}

impl From<FireError> for Failure {
    fn from(error: FireError) -> Failure {
        Failure {
            error,
            undo: Vec::new(),
            order: None,
            seq: 0,
        }
    }
}

impl Engine {
    /// Runs `command` on order `id`: all of it commits in one transaction, or nothing
    /// does, the completed external effects are undone, the attempt is recorded, and
    /// the error says which step refused and why.
    ///
    /// A transaction the database aborted because of a concurrent one is run again, up
    /// to `EngineConfig::conflict_retries` times, when nothing outside the database
    /// needs undoing; processor calls repeat safely since their idempotency keys derive
    /// from the order and its sequence number.
    pub async fn fire(&self, id: OrderId, command: Command) -> Result<Outcome, FireError> {
        let mut retries = 0;
        loop {
            match self.try_fire(id, &command).await {
                Ok(outcome) => return Ok(outcome),
                Err(failure)
                    if failure.undo.is_empty()
                        && failure.error.is_retryable()
                        && retries < self.config.conflict_retries =>
                {
                    retries += 1;
                    let pause = std::time::Duration::from_millis(5 << retries.min(6));
                    tokio::time::sleep(pause).await;
                }
                Err(failure) => return Err(self.fail(id, &command, failure).await),
            }
        }
    }

    async fn try_fire(&self, id: OrderId, command: &Command) -> Result<Outcome, Failure> {
        let now = self.clock.now();
        // Who the principal is does not depend on the order, so it is settled before
        // the transaction takes its lock; step 4 applies it.
        let staff_role = self.staff_role(command).await?;
        // 1. One transaction.
        let mut tx = self
            .store
            .begin()
            .await
            .map_err(FireError::store(Stage::Lock))?;
        // 2. Lock the order; read its lines, audit sequence number and stock with it.
        let (order, reads) = tx
            .lock_for_transition(id)
            .await
            .map_err(FireError::store(Stage::Lock))?
            .ok_or(FireError::OrderNotFound(id))?;
        // A command seen before gets its stored outcome. The key is looked up after the
        // lock: a concurrent twin holding the lock commits its outcome first, so the
        // lookup sees it (on PostgreSQL a lookup before the lock would not).
        if let Some(outcome) = replayed(tx.as_mut(), id, command).await? {
            tx.rollback()
                .await
                .map_err(FireError::store(Stage::Idempotency))?;
            return Ok(outcome);
        }
        // 3 and 4: the declarations of (state, event) that list the actor, who must
        // own the order or hold the role.
        let listed = listed(&order, command, staff_role)?;
        let seq = reads.last_seq + 1;
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
        // 4 (reason), 5 and 6, per declaration in file order: the first that passes wins.
        let spec = choose(&mut step, &listed).await?;
        // 7. Actions, then the hooks (exit before enter; none for a self-loop).
        let mut undo = Vec::new();
        if let Err(error) = run_actions(&mut step, spec, &mut undo).await {
            let (order, seq) = (step.order.clone(), step.seq);
            return Err(Failure {
                error,
                undo,
                order: Some(order),
                seq,
            });
        }
        let order = step.order.clone();
        let failure = |error: FireError| Failure {
            error,
            undo: undo.clone(),
            order: Some(order.clone()),
            seq,
        };
        // 8. Write the order, the audit row, the outbox and the command's outcome.
        let outcome = write(&mut step, spec).await.map_err(failure)?;
        drop(step);
        // 9. Commit.
        tx.commit()
            .await
            .map_err(FireError::store(Stage::Commit))
            .map_err(failure)?;
        Ok(outcome)
    }

    /// For a staff actor, whether the named principal holds the role; `None` for
    /// other actors.
    pub(super) async fn staff_role(&self, command: &Command) -> Result<Option<bool>, FireError> {
        let actor = &command.actor;
        if Machine::actor_class(actor.kind) != ActorClass::Staff {
            return Ok(None);
        }
        let Some(principal) = &actor.id else {
            return Err(FireError::MissingPrincipal { role: actor.kind });
        };
        let holds = self
            .authorizer
            .holds_role(principal, actor.kind)
            .await
            .map_err(FireError::store(Stage::Authorization))?;
        Ok(Some(holds))
    }
}

/// The owner of the order, or a member of staff holding the role.
fn authorize(order: &Order, command: &Command, staff_role: Option<bool>) -> Result<(), FireError> {
    let actor = &command.actor;
    match Machine::actor_class(actor.kind) {
        ActorClass::Owner => match &actor.id {
            Some(email) if *email == order.customer_email => Ok(()),
            other => Err(FireError::NotOwner {
                order: order.id,
                actor: other.clone().unwrap_or_default(),
            }),
        },
        ActorClass::Staff if staff_role != Some(true) => Err(FireError::MissingRole {
            principal: actor.id.clone().unwrap_or_default(),
            role: actor.kind,
        }),
        _ => Ok(()),
    }
}

async fn replayed(
    tx: &mut dyn StoreTx,
    id: OrderId,
    command: &Command,
) -> Result<Option<Outcome>, FireError> {
    let Some(key) = &command.idempotency_key else {
        return Ok(None);
    };
    let Some(stored) = tx
        .command_outcome(key)
        .await
        .map_err(FireError::store(Stage::Idempotency))?
    else {
        return Ok(None);
    };
    let mut outcome: Outcome = serde_json::from_str(&stored).map_err(|e| FireError::Store {
        step: Stage::Idempotency,
        source: crate::error::StoreError::Corrupt(format!("stored outcome of `{key}`: {e}")),
    })?;
    if outcome.order != id {
        return Err(FireError::Store {
            step: Stage::Idempotency,
            source: crate::error::StoreError::Invalid(format!(
                "idempotency key `{key}` was used for order {}, not order {id}",
                outcome.order
            )),
        });
    }
    outcome.replayed = true;
    Ok(Some(outcome))
}

/// Steps 3 and 4 before the per-declaration checks: the declarations of (state,
/// event) in file order that list the actor, once the owner or role check passed.
pub(super) fn listed(
    order: &Order,
    command: &Command,
    staff_role: Option<bool>,
) -> Result<Vec<&'static Spec>, FireError> {
    let listed = machine::listed::<Machine>(order.state, command.event, command.actor.kind)?;
    authorize(order, command, staff_role)?;
    Ok(listed)
}

/// Tries the declarations that list the actor, in file order: reason, window, guards.
/// The first that passes wins; when none does, the first refusal is the answer.
pub(super) async fn choose(
    step: &mut Step<'_>,
    listed: &[&'static Spec],
) -> Result<&'static Spec, FireError> {
    let actor = step.command.actor.kind;
    let (has_reason, now) = (step.command.reason.is_some(), step.now);
    match machine::choose(listed, actor, has_reason, now, &mut OrderGuards { step }).await {
        Ok(spec) => Ok(spec),
        Err(Unchosen::Refused(refusal)) => Err(refusal.into()),
        Err(Unchosen::Error(error)) => Err(error),
    }
}

/// The order's guards, for the machine-level `choose`.
struct OrderGuards<'s, 'a> {
    step: &'s mut Step<'a>,
}

impl machine::Evaluate<Machine> for OrderGuards<'_, '_> {
    type Error = FireError;

    async fn evaluate(
        &mut self,
        expr: &'static statemachine::GuardExpr<crate::order::Guard>,
    ) -> Result<statemachine::Decision<crate::order::Guard>, FireError> {
        Rules::new().evaluate(expr, self.step).await
    }
}

/// The transition's actions in order, then exit and enter hooks. Every action that
/// left an external effect (even one that then failed, when the processor confirmed the
/// effect) adds its undo action to `undo`, in the order they ran.
pub(super) async fn run_actions(
    step: &mut Step<'_>,
    spec: &'static Spec,
    undo: &mut Vec<(crate::order::Action, Vec<super::Effect>)>,
) -> Result<(), FireError> {
    for action in spec.actions.iter().chain(machine::hook_actions(spec)) {
        let before = step.effects.len();
        let result = Rules::new().run(action.action, step).await;
        if let Some(undo_action) = action.undo
            && step.effects.len() > before
        {
            undo.push((undo_action, step.effects[before..].to_vec()));
        }
        result?;
    }
    Ok(())
}

/// What step 8 writes for one transition: the order row, its audit row, and the
/// outbox rows of its notifications (the transition's, then the exit and enter hooks').
pub(super) struct Planned {
    pub(super) order: Order,
    pub(super) outcome: Outcome,
    /// (notification, payload, dedupe key)
    pub(super) messages: Vec<(&'static str, serde_json::Value, String)>,
}

pub(super) fn plan(order: &Order, command: &Command, spec: &'static Spec, seq: i64) -> Planned {
    let mut next = order.clone();
    let from = order.state;
    // The rollups are the actions' to keep (payments) or the operations' (shipments):
    // a transition itself moves no parcel.
    next.state = spec.to;
    let messages = machine::emits(spec)
        .into_iter()
        .map(|notification| {
            let kind = notification.as_str();
            let payload = serde_json::json!({
                "order": order.id,
                "number": order.number,
                "event": command.event,
                "from": from,
                "to": spec.to,
                "seq": seq,
            });
            (kind, payload, format!("order:{}:{seq}:{kind}", order.id))
        })
        .collect();
    let outcome = Outcome {
        order: order.id,
        event: command.event,
        from,
        to: spec.to,
        seq,
        is_override: spec.is_override,
        replayed: false,
    };
    Planned {
        order: next,
        outcome,
        messages,
    }
}

impl Planned {
    /// The audit row, borrowing the command's text.
    pub(super) fn row<'c>(
        &self,
        command: &'c Command,
        at: chrono::DateTime<chrono::Utc>,
    ) -> NewTransition<'c> {
        NewTransition {
            order: self.outcome.order,
            seq: self.outcome.seq,
            event: command.event,
            from: self.outcome.from,
            to: self.outcome.to,
            actor_kind: command.actor.kind,
            actor_id: command.actor.id.as_deref(),
            reason: command.reason,
            note: command.note.as_deref(),
            is_override: self.outcome.is_override,
            machine_hash: <Machine as statemachine::Machine>::SOURCE_HASH,
            idempotency_key: command.idempotency_key.as_deref(),
            metadata: &command.metadata,
            at,
        }
    }

    pub(super) fn outbox(&self, at: chrono::DateTime<chrono::Utc>) -> Vec<NewMessage<'_>> {
        self.messages
            .iter()
            .map(|(kind, payload, dedupe_key)| NewMessage {
                aggregate: self.outcome.order,
                kind,
                payload,
                dedupe_key,
                at,
            })
            .collect()
    }
}

async fn write(step: &mut Step<'_>, spec: &'static Spec) -> Result<Outcome, FireError> {
    let command = step.command;
    let planned = plan(&step.order, command, spec, step.seq);
    let messages = planned.outbox(step.now);
    let written = step
        .tx
        .write_transition(
            &planned.order,
            &planned.row(command, step.now),
            &messages,
            step.now,
        )
        .await
        .map_err(FireError::store(Stage::Write))?;
    if !written {
        return Err(FireError::Conflict {
            order: planned.order.id,
            expected: planned.order.version,
        });
    }
    if let Some(key) = &command.idempotency_key {
        let stored = serde_json::to_string(&planned.outcome).map_err(|e| FireError::Store {
            step: Stage::Write,
            source: crate::error::StoreError::Corrupt(e.to_string()),
        })?;
        step.tx
            .record_command(key, planned.order.id, &stored, step.now)
            .await
            .map_err(FireError::store(Stage::Write))?;
    }
    Ok(planned.outcome)
}
