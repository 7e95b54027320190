//! The guards and actions of `payment.fsm`, read and written in the transaction that
//! holds the payment's order.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use statemachine::{Decision, GuardExpr};

use super::Engine;
use super::machine::Evaluate;
use super::payments::{PaymentCommand, PaymentFireError};
use super::rules::{Effect, retry};
use crate::error::StoreError;
use crate::payment::PaymentError;
use crate::payment::machine::{Actions, Guard, Guards, Machine, State};
use crate::store::StoreTx;
use crate::types::{EntityTransition, Order, Payment, Refund};

/// What a payment's guards read and its actions change: the locked order, the payment
/// and its refunds and trail so far, and the transaction.
pub struct PaymentStep<'a> {
    pub(crate) tx: &'a mut dyn StoreTx,
    pub(crate) engine: &'a Engine,
    pub order: &'a mut Order,
    pub payment: Payment,
    /// The payment's refunds, as recorded before this transition.
    pub refunds: Vec<Refund>,
    pub trail: Vec<EntityTransition>,
    pub command: &'a PaymentCommand,
    /// The sequence number this transition gets in the payment's trail.
    pub seq: i64,
    pub now: DateTime<Utc>,
    /// External effects completed so far, for the caller to undo if its transaction
    /// fails.
    pub(crate) effects: &'a mut Vec<Effect>,
    pub(crate) order_notified: bool,
}

impl std::fmt::Debug for PaymentStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentStep")
            .field("order", &self.order.id)
            .field("payment", &self.payment.id)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl PaymentStep<'_> {
    /// Captured money not refunded yet.
    fn remaining(&self) -> i64 {
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|r| r.state == "succeeded")
            .map(|r| r.amount_cents)
            .sum();
        self.payment.amount_cents - refunded
    }

    /// The amount a refund asks for: the command's, or all that is left.
    fn refund_amount(&self) -> i64 {
        self.command
            .amount_cents
            .unwrap_or_else(|| self.remaining())
    }

    /// The idempotency key of this transition's processor call.
    fn key(&self, what: &str) -> String {
        self.command
            .key
            .clone()
            .unwrap_or_else(|| format!("payment-{}-t{}-{what}", self.payment.id, self.seq))
    }

    fn reference(&self) -> String {
        self.payment.processor_ref.clone().unwrap_or_default()
    }

    /// Records a refund of `amount` under `key`.
    async fn insert_refund(
        &mut self,
        amount: i64,
        key: String,
        reference: Option<String>,
        action: &str,
    ) -> Result<(), PaymentFireError> {
        let refund = Refund {
            order: self.order.id,
            payment: self.payment.id,
            amount_cents: amount,
            state: "succeeded".to_owned(),
            reason: self.command.reason.map(|r| r.as_str().to_owned()),
            idempotency_key: key,
            processor_ref: reference,
        };
        self.tx
            .insert_refund(&refund, self.now)
            .await
            .map_err(action_error(action))?;
        self.refunds.push(refund);
        Ok(())
    }
}

/// `payment.fsm`'s guards and actions.
pub struct PaymentRules<'a>(PhantomData<&'a ()>);

impl PaymentRules<'_> {
    pub fn new() -> Self {
        PaymentRules(PhantomData)
    }
}

impl Default for PaymentRules<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// The payment's guards, for the machine-level `choose`.
pub(super) struct PaymentGuards<'s, 'a> {
    pub(super) step: &'s mut PaymentStep<'a>,
}

impl Evaluate<Machine> for PaymentGuards<'_, '_> {
    type Error = PaymentFireError;

    async fn evaluate(
        &mut self,
        expr: &'static GuardExpr<Guard>,
    ) -> Result<Decision<Guard>, PaymentFireError> {
        PaymentRules::new().evaluate(expr, self.step).await
    }
}

fn action_error(action: &str) -> impl FnOnce(StoreError) -> PaymentFireError + '_ {
    move |err| failed(action, err.to_string())
}

fn failed(action: &str, message: impl Into<String>) -> PaymentFireError {
    PaymentFireError::ActionFailed {
        action: action.to_owned(),
        message: message.into(),
    }
}

impl<'a> Guards for PaymentRules<'a> {
    type Context = PaymentStep<'a>;
    type Error = PaymentFireError;

    /// The processor granted the authorization (the payment has its reference), and
    /// it has not lapsed: it is younger than the authorization lifetime.
    async fn authorization_valid(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let Some(_) = &ctx.payment.processor_ref else {
            return Ok(false);
        };
        let granted = ctx
            .trail
            .iter()
            .rev()
            .find(|row| row.to == State::Authorized.as_str())
            .map(|row| row.at);
        // A payment authorized before payments had trails counts from now: it cannot
        // be told apart from a fresh one, and the processor's expiry webhook voids it
        // when it lapses.
        Ok(granted.is_none_or(|at| ctx.now - at < ctx.engine.config.authorization_lifetime))
    }

    async fn amount_exceeds_authorization(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let asked = ctx.command.amount_cents.unwrap_or(ctx.payment.amount_cents);
        Ok(asked > ctx.payment.amount_cents)
    }

    async fn refund_covers_remaining_amount(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let remaining = ctx.remaining();
        Ok(remaining > 0 && ctx.refund_amount() == remaining)
    }

    async fn refund_within_remaining_amount(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let amount = ctx.refund_amount();
        Ok(amount > 0 && amount < ctx.remaining())
    }

    /// The order's failed attempts so far (each `fail` of each of its payments, as the
    /// order's `payment_attempts_exhausted` counts them) leave room for one more.
    async fn attempts_remaining(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let error = |err: StoreError| PaymentFireError::GuardError {
            guard: "attempts_remaining".into(),
            message: err.to_string(),
        };
        let payments = ctx.tx.payments(ctx.order.id).await.map_err(error)?;
        let failed = super::rollup::failed_attempts(ctx.tx, &payments)
            .await
            .map_err(error)?;
        Ok(i64::try_from(failed).unwrap_or(i64::MAX) < ctx.engine.config.max_payment_attempts)
    }

    /// A split may move at most what the payment captured and still holds (not
    /// refunded), and something.
    async fn amount_within_capture(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        let amount = ctx.command.amount_cents.unwrap_or(0);
        Ok(amount > 0 && amount <= ctx.remaining())
    }

    /// The processor reversed one of the payment's refunds, and its succeeded refunds
    /// no longer cover what it captured.
    async fn refund_reversed_by_processor(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<bool, PaymentFireError> {
        Ok(ctx.refunds.iter().any(|r| r.state == "reversed") && ctx.remaining() > 0)
    }
}

impl<'a> Actions for PaymentRules<'a> {
    type Context = PaymentStep<'a>;
    type Error = PaymentFireError;

    /// Captures the amount at the processor. A capture the processor made is an effect
    /// the caller undoes if its transaction fails; one whose answer was lost is asked
    /// about, and counts as made if the processor's books show it.
    async fn request_capture(&self, ctx: &mut PaymentStep<'a>) -> Result<(), PaymentFireError> {
        let amount = ctx.command.amount_cents.unwrap_or(ctx.payment.amount_cents);
        let reference = ctx.reference();
        let key = ctx.key("capture");
        let effect = Effect::Captured {
            payment: ctx.payment.id,
            reference: reference.clone(),
            amount_cents: amount,
            key: key.clone(),
        };
        if !ctx.command.record_only {
            let processor = ctx.engine.payments.clone();
            let result = retry(ctx.engine.config.processor_retries, || {
                processor.capture(&key, &reference, amount)
            })
            .await;
            match result {
                Ok(()) => {}
                Err(PaymentError::Timeout) => {
                    let balance = processor.balance(&reference).await;
                    if balance.is_ok_and(|b| b.captured_cents >= amount) {
                        ctx.effects.push(effect);
                    }
                    return Err(failed("request_capture", "the payment processor timed out"));
                }
                Err(err) => return Err(failed("request_capture", err.to_string())),
            }
            ctx.engine.crash_point(super::CrashPoint::Captured);
            ctx.effects.push(effect);
        }
        ctx.payment.amount_cents = amount;
        Ok(())
    }

    /// Refunds the amount at the processor and records the refund; recorded only
    /// when the processor's books already show it. The refunds table refuses more than
    /// was captured, whatever the guards saw.
    async fn request_refund(&self, ctx: &mut PaymentStep<'a>) -> Result<(), PaymentFireError> {
        let amount = ctx.refund_amount();
        let key = ctx.key("refund");
        let reference = if ctx.command.record_only {
            ctx.command.reference.clone()
        } else {
            let processor = ctx.engine.payments.clone();
            let payment_ref = ctx.reference();
            let refund_ref = retry(ctx.engine.config.processor_retries, || {
                processor.refund(&key, &payment_ref, amount)
            })
            .await
            .map_err(|e| failed("request_refund", e.to_string()))?;
            Some(refund_ref)
        };
        ctx.insert_refund(amount, key, reference, "request_refund")
            .await
    }

    async fn release_authorization(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<(), PaymentFireError> {
        if ctx.command.record_only {
            return Ok(());
        }
        let key = ctx.key("void");
        let reference = ctx.reference();
        let processor = ctx.engine.payments.clone();
        retry(ctx.engine.config.processor_retries, || {
            processor.void(&key, &reference)
        })
        .await
        .map_err(|e| failed("release_authorization", e.to_string()))
    }

    /// The bank took the money back: recorded as a refund the shop did not make, of
    /// what the bank took, at most what is left.
    async fn record_chargeback(&self, ctx: &mut PaymentStep<'a>) -> Result<(), PaymentFireError> {
        let remaining = ctx.remaining();
        let amount = ctx.command.amount_cents.unwrap_or(remaining).min(remaining);
        if amount <= 0 {
            return Ok(());
        }
        let key = ctx.key("chargeback");
        let reference = ctx.command.reference.clone();
        ctx.insert_refund(amount, key, reference, "record_chargeback")
            .await
    }

    /// The parent's payment keeps what the split did not move.
    async fn reduce_capture(&self, ctx: &mut PaymentStep<'a>) -> Result<(), PaymentFireError> {
        let amount = ctx.command.amount_cents.unwrap_or(0);
        ctx.payment.amount_cents -= amount;
        Ok(())
    }

    /// The child's payment holds its share under the parent's processor reference
    /// (the command's), for the amount it was created with.
    async fn record_allocation(&self, ctx: &mut PaymentStep<'a>) -> Result<(), PaymentFireError> {
        let Some(reference) = ctx.command.reference.clone() else {
            return Err(failed(
                "record_allocation",
                "an allocation names the processor reference it shares",
            ));
        };
        ctx.payment.processor_ref = Some(reference);
        Ok(())
    }

    /// The engine rewrites the order's payment rollup after every payment transition
    /// (the rollup is derived from the rows, never kept on its own), so nothing is left
    /// for this action to do; payment.fsm names it where the order's status changes.
    async fn update_order_payment_status(
        &self,
        _ctx: &mut PaymentStep<'a>,
    ) -> Result<(), PaymentFireError> {
        Ok(())
    }

    /// The order hears of the failure: once its attempts are used up, the system
    /// cancels it with reason `payment_failed`, after this transaction commits.
    async fn notify_order_of_failure(
        &self,
        ctx: &mut PaymentStep<'a>,
    ) -> Result<(), PaymentFireError> {
        ctx.order_notified = true;
        Ok(())
    }
}
