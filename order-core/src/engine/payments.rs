//! Payments run `machines/payment.fsm` through the same machine-level steps as orders
//! and parcels (`machine.rs`). A payment lives under its order: every payment
//! transition runs in a transaction that holds the order's lock, either one of its own
//! ([`Engine::fire_payment`], the processor's webhooks, reconciliation) or the order's
//! transition whose action moves the payment (`capture_payment` fires `capture`,
//! `refund_payment` fires `refund`, `void_authorization` fires `void`). Each payment
//! transition writes the payment row, appends to the payment's own audit trail
//! (`entity_transitions`), queues its notifications, and rewrites the order's payment
//! rollup, all in that transaction.

use chrono::{DateTime, Utc};

use super::Engine;
use super::machine::{self, EntityError, Unchosen};
use super::payment_rules::{PaymentGuards, PaymentRules, PaymentStep};
use super::rollup;
use super::rules::{Effect, retry};
use crate::error::{FireError, OperationError, StoreError};
use crate::payment::machine::{ActorKind, Event, Machine, Reason, State};
use crate::store::{NewEntityTransition, NewMessage, StoreTx};
use crate::types::{Order, OrderId, Payment, PaymentId};

/// The name payment rows carry in `entity_transitions`.
pub const MACHINE: &str = <Machine as statemachine::Machine>::NAME;

/// An event for one payment's machine.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PaymentCommand {
    pub event: Event,
    pub actor: ActorKind,
    /// Who the staff member is (`support`, `admin`).
    pub actor_id: Option<String>,
    pub reason: Option<Reason>,
    /// How much: to capture (what was authorized when absent), to refund (all that is
    /// left when absent), or that the bank took back (a chargeback).
    pub amount_cents: Option<i64>,
    /// The idempotency key of the processor call the transition makes; derived from
    /// the payment and its trail when absent.
    pub key: Option<String>,
    /// The processor's books already show the effect (a capture whose transaction
    /// died, a refund the processor paid on its own): the transition records it
    /// without calling the processor.
    pub record_only: bool,
    /// With `record_only`, the processor's reference of the effect (a refund's).
    pub reference: Option<String>,
    /// When it happened, if not now (a webhook processed later).
    pub at: Option<DateTime<Utc>>,
    /// The inbox message or request that caused it.
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
}

impl PaymentCommand {
    pub fn new(event: Event, actor: ActorKind) -> PaymentCommand {
        PaymentCommand {
            event,
            actor,
            actor_id: None,
            reason: None,
            amount_cents: None,
            key: None,
            record_only: false,
            reference: None,
            at: None,
            external_id: None,
            metadata: serde_json::Value::Null,
        }
    }

    pub fn amount(mut self, cents: i64) -> PaymentCommand {
        self.amount_cents = Some(cents);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> PaymentCommand {
        self.key = Some(key.into());
        self
    }

    /// Records an effect the processor's books already show; `reference` is the
    /// effect's own reference, when it has one (a refund's).
    pub fn record_only(mut self, reference: Option<String>) -> PaymentCommand {
        self.record_only = true;
        self.reference = reference;
        self
    }
}

machine::entity_command_builders!(PaymentCommand, Reason);

/// What a payment's transition did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PaymentOutcome {
    pub payment: PaymentId,
    pub order: OrderId,
    pub event: Event,
    pub from: State,
    pub to: State,
    pub seq: i64,
}

/// Why a payment's command was refused or failed; nothing of it was written.
pub type PaymentFireError = EntityError<Machine>;

/// What a payment transition works in: the transaction that holds the order's lock,
/// the locked order (whose payment rollup it rewrites), the external effects completed
/// so far (a capture, which the caller undoes if its transaction fails), and the time.
pub(crate) struct PaymentRun<'r> {
    pub(crate) tx: &'r mut dyn StoreTx,
    pub(crate) order: &'r mut Order,
    pub(crate) effects: &'r mut Vec<Effect>,
    pub(crate) now: DateTime<Utc>,
}

/// A payment transition written (not yet committed).
#[derive(Debug)]
pub(crate) struct Stepped {
    pub(crate) outcome: PaymentOutcome,
    pub(crate) payment: Payment,
    /// The payment entered `failed`: its order heard of it (`notify_order_of_failure`)
    /// and, once its attempts are used up, is cancelled after the commit.
    pub(crate) order_notified: bool,
}

impl Engine {
    /// Fires `command` at payment `payment` of order `order`, in a transaction of its
    /// own under the order's lock.
    pub async fn fire_payment(
        &self,
        order: OrderId,
        payment: PaymentId,
        command: &PaymentCommand,
    ) -> Result<PaymentOutcome, PaymentFireError> {
        self.check_staff::<Machine>(command.actor, command.actor_id.as_deref())
            .await?;
        let now = command.at.unwrap_or_else(|| self.clock.now());
        let mut tx = self.store.begin().await?;
        let Some(mut locked) = tx.lock_order(order).await? else {
            return Err(PaymentFireError::NotFound {
                order,
                entity: payment.0,
            });
        };
        let Some(row) = tx
            .payments(order)
            .await?
            .into_iter()
            .find(|p| p.id == payment)
        else {
            return Err(PaymentFireError::NotFound {
                order,
                entity: payment.0,
            });
        };
        let mut effects = Vec::new();
        let run = PaymentRun {
            tx: tx.as_mut(),
            order: &mut locked,
            effects: &mut effects,
            now,
        };
        let stepped = match self.step_payment(run, row, command).await {
            Ok(stepped) => stepped,
            Err(error) => {
                drop(tx);
                self.compensate_all(order, &effects).await;
                return Err(error);
            }
        };
        let closed = async {
            if !tx.update_order(&locked, now).await? {
                return Err(StoreError::Invalid(format!(
                    "order {order} changed concurrently"
                )));
            }
            tx.commit().await
        };
        if let Err(error) = closed.await {
            self.compensate_all(order, &effects).await;
            return Err(error.into());
        }
        if stepped.order_notified {
            self.cancel_if_exhausted(order).await;
        }
        Ok(stepped.outcome)
    }

    /// Gives back the money of captures whose transaction did not commit.
    async fn compensate_all(&self, order: OrderId, effects: &[Effect]) {
        for effect in effects {
            if let Err(error) = self.compensate(order, effect).await {
                tracing::error!(?effect, %error, "could not give back a capture that was not recorded");
            }
        }
    }

    /// Gives back the money of a capture whose transition failed, then records the
    /// refund (and the capture, if the failed transaction took its record with it)
    /// through payment.fsm. The refund's key derives from the capture's, so a repeated
    /// compensation refunds once. If the record fails, the processor's `refunded`
    /// webhook or reconciliation records it later.
    pub(crate) async fn compensate(
        &self,
        order: OrderId,
        effect: &Effect,
    ) -> Result<(), FireError> {
        let Effect::Captured {
            payment,
            reference,
            amount_cents,
            key,
        } = effect;
        let undo_key = format!("{key}-undo");
        let processor = self.payments.clone();
        let refund_ref = retry(self.config.processor_retries, || {
            processor.refund(&undo_key, reference, *amount_cents)
        })
        .await
        .map_err(|e| FireError::ActionFailed {
            action: "refund_payment".into(),
            message: e.to_string(),
        })?;
        let recorded: Result<(), OperationError> = async {
            let now = self.clock.now();
            let (mut tx, mut locked) = self.lock(order).await?;
            let Some(mut row) = tx
                .payments(order)
                .await?
                .into_iter()
                .find(|p| p.id == *payment)
            else {
                return Ok(());
            };
            if row.state == "authorized" {
                let capture = PaymentCommand::new(Event::Capture, ActorKind::System)
                    .amount(*amount_cents)
                    .key(key.clone())
                    .record_only(None);
                row = self
                    .step_payment_in(tx.as_mut(), &mut locked, row, &capture, now)
                    .await?
                    .payment;
            }
            let refund = PaymentCommand::new(Event::Refund, ActorKind::System)
                .reason(Reason::ProcessorError)
                .amount(*amount_cents)
                .key(undo_key.clone())
                .record_only(Some(refund_ref));
            self.step_payment_in(tx.as_mut(), &mut locked, row, &refund, now)
                .await?;
            self.close(tx, &locked).await
        }
        .await;
        if let Err(error) = recorded {
            tracing::warn!(%order, %error, "a compensating refund was made but not recorded");
        }
        Ok(())
    }

    /// Runs one payment transition inside `run`'s transaction: the table, the guards,
    /// the actions and hooks, then the payment row, its audit row, the outbox and the
    /// order's payment rollup.
    pub(crate) async fn step_payment(
        &self,
        run: PaymentRun<'_>,
        payment: Payment,
        command: &PaymentCommand,
    ) -> Result<Stepped, PaymentFireError> {
        let from: State = payment.state.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "payment {} is in `{}`, not a state of payment.fsm",
                payment.id, payment.state
            ))
        })?;
        let listed = machine::listed::<Machine>(from, command.event, command.actor)?;
        let trail = run.tx.entity_trail(MACHINE, payment.id.0).await?;
        let refunds = run.tx.refunds(payment.order).await?;
        let seq = trail.last().map_or(0, |row| row.seq) + 1;
        let mut step = PaymentStep {
            tx: run.tx,
            engine: self,
            order: run.order,
            refunds: refunds
                .into_iter()
                .filter(|r| r.payment == payment.id)
                .collect(),
            payment,
            trail,
            command,
            seq,
            now: run.now,
            effects: run.effects,
            order_notified: false,
        };
        let has_reason = command.reason.is_some();
        let mut guards = PaymentGuards { step: &mut step };
        let spec =
            match machine::choose(&listed, command.actor, has_reason, run.now, &mut guards).await {
                Ok(spec) => spec,
                Err(Unchosen::Refused(refusal)) => return Err(refusal.into()),
                Err(Unchosen::Error(error)) => return Err(error),
            };
        let rules = PaymentRules::new();
        for action in spec.actions.iter().chain(machine::hook_actions(spec)) {
            use crate::payment::machine::Actions as _;
            rules.run(action.action, &mut step).await?;
        }
        step.payment.state = spec.to.as_str().to_owned();
        if spec.to == State::Initiated && from != State::Initiated {
            // The processor remembers the failed attempt under its key and would only
            // replay it: a retried payment asks again under a key of its own.
            step.payment.idempotency_key = format!("{}-retry-{seq}", step.payment.idempotency_key);
        }
        let order = step.order.id;
        let row = NewEntityTransition {
            machine: MACHINE,
            entity: step.payment.id.0,
            order,
            seq,
            event: command.event.as_str(),
            from: from.as_str(),
            to: spec.to.as_str(),
            actor_kind: command.actor.as_str(),
            actor_id: command.actor_id.as_deref(),
            reason: command.reason.map(|r| r.as_str()),
            is_override: spec.is_override,
            machine_hash: <Machine as statemachine::Machine>::SOURCE_HASH,
            external_id: command.external_id.as_deref(),
            metadata: &command.metadata,
            at: run.now,
        };
        step.tx
            .write_payment_transition(&step.payment, &row)
            .await?;
        for kind in machine::emits(spec) {
            let payload = serde_json::json!({
                "order": order, "payment": step.payment.id, "event": command.event,
                "from": from, "to": spec.to, "seq": seq,
                "amount_cents": step.payment.amount_cents,
            });
            let dedupe_key = format!("payment:{}:{seq}:{}", step.payment.id, kind.as_str());
            step.tx
                .enqueue(&NewMessage {
                    aggregate: order,
                    kind: kind.as_str(),
                    payload: &payload,
                    dedupe_key: &dedupe_key,
                    at: run.now,
                })
                .await?;
        }
        // The rollup is derived from the payment and refund rows, never kept on its
        // own, so every payment transition rewrites it.
        step.order.payment_status = rollup::current_payment_status(step.tx, order).await?;
        Ok(Stepped {
            outcome: PaymentOutcome {
                payment: step.payment.id,
                order,
                event: command.event,
                from,
                to: spec.to,
                seq,
            },
            order_notified: step.order_notified,
            payment: step.payment,
        })
    }
}
