//! Processor webhooks: kept in the `inbox` once per external id, then each compared with
//! the shop's books. Confirmations of the shop's own requests find the books in step,
//! or settle what a crash left in doubt (through reconciliation); the processor's own
//! doings (an authorization that lapsed, a chargeback, a refund reversed) are recorded.
//!
//! Every handler compares the event with the payment's current row rather than with the
//! previous event, so duplicates and events out of order do no harm: a second copy never
//! gets past the inbox, and a late confirmation finds its effect already recorded.

use serde::Serialize;

use super::Engine;
use super::payments::{PaymentCommand, PaymentFireError};
use super::reconcile::Reconciled;
use crate::error::{OperationError, StoreError};
use crate::payment::machine::{
    ActorKind as PaymentActor, Event as PaymentEvent, Reason as PaymentReason,
};
use crate::payment::{Authorization, ProcessorEvent, ProcessorEventKind};
use crate::types::{Payment, Refund};

/// The inbox source of payment processor webhooks.
pub const PROCESSOR: &str = "processor";

/// What one pass over the processor's webhooks did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProcessorInbox {
    /// The processor's own doings, recorded: lapsed authorizations, chargebacks,
    /// reversed refunds, refunds the shop had not recorded.
    pub applied: usize,
    /// Confirmations the books already agreed with.
    pub in_step: usize,
    /// Confirmations that found the books in doubt, settled by reconciliation.
    pub reconciled: usize,
    /// Events that no longer apply (an expiry after a capture).
    pub stale: usize,
    /// Events for payments the shop does not know, or that the books refuse.
    pub refused: usize,
    /// Events for a payment the shop does not know yet (an authorization whose answer
    /// was lost), left for a later pass: reconciliation records it meanwhile.
    pub waiting: usize,
}

/// What became of one event.
enum Handled {
    /// Not handled yet: the payment is unknown, for now.
    Waiting,
    Applied,
    InStep,
    Reconciled,
    Stale(String),
}

impl Engine {
    /// Keeps a processor webhook; false when the same event was received before.
    pub async fn receive_processor_event(
        &self,
        event: &ProcessorEvent,
    ) -> Result<bool, StoreError> {
        self.keep_webhook(PROCESSOR, &event.external_id, event)
            .await
    }

    /// Handles every pending processor webhook, each payment's in the processor's
    /// order.
    pub async fn process_processor_inbox(&self) -> Result<ProcessorInbox, OperationError> {
        let (mut events, refused) = self.pending_webhooks::<ProcessorEvent>(PROCESSOR).await?;
        let mut report = ProcessorInbox {
            refused,
            ..ProcessorInbox::default()
        };
        events.sort_by(|a, b| (&a.1.reference, a.1.sequence).cmp(&(&b.1.reference, b.1.sequence)));
        for (message, event) in &events {
            let outcome = match self
                .handle_processor_event(event, message.received_at)
                .await
            {
                Ok(Handled::Waiting) => {
                    report.waiting += 1;
                    continue;
                }
                Ok(Handled::Applied) => {
                    report.applied += 1;
                    "applied".to_owned()
                }
                Ok(Handled::InStep) => {
                    report.in_step += 1;
                    "in step".to_owned()
                }
                Ok(Handled::Reconciled) => {
                    report.reconciled += 1;
                    "reconciled".to_owned()
                }
                Ok(Handled::Stale(why)) => {
                    report.stale += 1;
                    format!("stale: {why}")
                }
                Err(
                    OperationError::Invalid(why) | OperationError::Store(StoreError::Invalid(why)),
                ) => {
                    report.refused += 1;
                    format!("refused: {why}")
                }
                // The store or the processor failed: the event stays for the next pass.
                Err(error) => {
                    tracing::warn!(external_id = %message.external_id, %error, "processor event not handled");
                    continue;
                }
            };
            self.webhook_done(message, &outcome).await?;
        }
        Ok(report)
    }

    async fn handle_processor_event(
        &self,
        event: &ProcessorEvent,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Handled, OperationError> {
        let payments = {
            let mut tx = self.store.begin().await?;
            let payments = tx.payments_by_reference(&event.reference).await?;
            tx.rollback().await?;
            payments
        };
        let Some(payment) = payments.iter().min_by_key(|p| p.id).cloned() else {
            if self.clock.now() - received_at < self.config.unmatched_webhook_patience {
                return Ok(Handled::Waiting);
            }
            return Err(OperationError::Invalid(format!(
                "no payment has reference {}",
                event.reference
            )));
        };
        match event.kind {
            ProcessorEventKind::Authorized => self.confirm_authorized(payment, event).await,
            ProcessorEventKind::Captured => {
                let recorded = payments.iter().any(Payment::holds_capture);
                self.confirm(recorded, &payment).await
            }
            ProcessorEventKind::Voided => {
                let recorded = matches!(payment.state.as_str(), "voided" | "refunded");
                self.confirm(recorded, &payment).await
            }
            ProcessorEventKind::Refunded => self.confirm_refunded(&payments, event).await,
            ProcessorEventKind::AuthorizationExpired => self.expire(payment, event).await,
            ProcessorEventKind::Chargeback => self.chargeback(&payments, event).await,
            ProcessorEventKind::RefundReversed => self.reverse_refund(&payments, event).await,
        }
    }

    /// An authorization the shop asked for: recorded already, or its answer was lost.
    async fn confirm_authorized(
        &self,
        payment: Payment,
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        if payment.state != "initiated" {
            return Ok(Handled::InStep);
        }
        let authorization = Authorization {
            reference: event.reference.clone(),
            amount_cents: event.amount_cents,
            review: false,
        };
        self.settle_authorization(payment, Ok(authorization))
            .await?;
        Ok(Handled::Reconciled)
    }

    /// A confirmation the books agree with, or one that finds them in doubt: the
    /// order's payments are reconciled with the processor's books.
    async fn confirm(&self, recorded: bool, payment: &Payment) -> Result<Handled, OperationError> {
        if recorded {
            return Ok(Handled::InStep);
        }
        let order = self
            .store
            .order(payment.order)
            .await?
            .ok_or(OperationError::OrderNotFound(payment.order))?;
        let mut done = Reconciled::default();
        self.reconcile_order(&order, &mut done).await?;
        Ok(Handled::Reconciled)
    }

    /// The refunds recorded against `payments`: every payment with one processor
    /// reference, which a split shares between a parent and its child.
    async fn refunds_of(&self, payments: &[Payment]) -> Result<Vec<Refund>, OperationError> {
        let mut orders: Vec<_> = payments.iter().map(|p| p.order).collect();
        orders.sort();
        orders.dedup();
        let mut refunds = Vec::new();
        for order in orders {
            refunds.extend(self.store.refunds(order).await?);
        }
        refunds.retain(|r| payments.iter().any(|p| p.id == r.payment));
        Ok(refunds)
    }

    /// The payment of a shared reference that an effect of `amount` the shop did not
    /// make itself (a refund it never recorded, a chargeback) is recorded against: the
    /// first that still holds that much, or else the first that holds anything. The
    /// processor knows one payment where a split made two; either way the books'
    /// totals agree with its own.
    async fn holding(
        &self,
        payments: &[Payment],
        amount: i64,
    ) -> Result<Option<Payment>, OperationError> {
        let refunds = self.refunds_of(payments).await?;
        let left = |p: &Payment| {
            let refunded: i64 = refunds
                .iter()
                .filter(|r| r.payment == p.id && r.state == "succeeded")
                .map(|r| r.amount_cents)
                .sum();
            p.amount_cents - refunded
        };
        let open: Vec<&Payment> = payments
            .iter()
            .filter(|p| matches!(p.state.as_str(), "captured" | "partially_refunded"))
            .collect();
        let chosen = open
            .iter()
            .find(|p| left(p) >= amount)
            .or_else(|| open.iter().find(|p| left(p) > 0));
        Ok(chosen.map(|p| (*p).clone()))
    }

    async fn confirm_refunded(
        &self,
        payments: &[Payment],
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        let refunds = self.refunds_of(payments).await?;
        let known = refunds
            .iter()
            .any(|r| r.processor_ref.is_some() && r.processor_ref == event.refund_reference);
        if known {
            return Ok(Handled::InStep);
        }
        let Some(payment) = self.holding(payments, event.amount_cents).await? else {
            return Err(OperationError::Invalid(format!(
                "a refund on {}, which holds no captured payment",
                event.reference
            )));
        };
        // A refund the processor paid that the shop never recorded (its transaction
        // died after the call): recorded now through payment.fsm, so the books agree.
        let refund = PaymentCommand::new(PaymentEvent::Refund, PaymentActor::System)
            .reason(PaymentReason::ProcessorError)
            .amount(event.amount_cents)
            .key(format!("webhook-{}", event.external_id))
            .record_only(event.refund_reference.clone());
        self.apply_webhook(payment, refund, event).await
    }

    /// An authorization that lapsed: payment.fsm's `expire`, by the processor.
    async fn expire(
        &self,
        mut payment: Payment,
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        if payment.state != "authorized" {
            return Ok(Handled::Stale(format!(
                "the payment is `{}`",
                payment.state
            )));
        }
        payment.failure_code = Some("authorization_expired".into());
        let expire = PaymentCommand::new(PaymentEvent::Expire, PaymentActor::Processor);
        self.apply_webhook(payment, expire, event).await
    }

    /// The bank took captured money back: payment.fsm's `chargeback`, by the
    /// processor, on the payment that still holds money.
    async fn chargeback(
        &self,
        payments: &[Payment],
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        let Some(payment) = self.holding(payments, event.amount_cents).await? else {
            return Err(OperationError::Invalid(format!(
                "a chargeback on {}, which holds no captured payment",
                event.reference
            )));
        };
        let chargeback = PaymentCommand::new(PaymentEvent::Chargeback, PaymentActor::Processor)
            .reason(PaymentReason::Chargeback)
            .amount(event.amount_cents)
            .key(format!("chargeback-{}", event.external_id));
        self.apply_webhook(payment, chargeback, event).await
    }

    /// Fires a webhook's payment transition under the order's lock. A refusal of the
    /// payment's machine is the event's refusal: it is recorded as such, not retried.
    async fn apply_webhook(
        &self,
        payment: Payment,
        command: PaymentCommand,
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        let command = command.external_id(&event.external_id);
        let now = self.clock.now();
        let (mut tx, mut order) = self.lock(payment.order).await?;
        match self
            .step_payment_in(tx.as_mut(), &mut order, payment, &command, now)
            .await
        {
            Ok(_) => {}
            Err(OperationError::PaymentMachine(PaymentFireError::Refused(refusal))) => {
                return Err(OperationError::Invalid(refusal.to_string()));
            }
            Err(error) => return Err(error),
        }
        self.close(tx, &order).await?;
        Ok(Handled::Applied)
    }

    async fn reverse_refund(
        &self,
        payments: &[Payment],
        event: &ProcessorEvent,
    ) -> Result<Handled, OperationError> {
        let refunds = self.refunds_of(payments).await?;
        let Some(refund) = refunds
            .iter()
            .find(|r| r.processor_ref.is_some() && r.processor_ref == event.refund_reference)
        else {
            return Err(OperationError::Invalid(format!(
                "no refund has reference {}",
                event.refund_reference.as_deref().unwrap_or("(none)")
            )));
        };
        if refund.state == "reversed" {
            return Ok(Handled::InStep);
        }
        let refund = refund.clone();
        let (mut tx, mut order) = self.lock(refund.order).await?;
        self.reverse_refund_in(tx.as_mut(), &mut order, &refund)
            .await?;
        self.close(tx, &order).await?;
        Ok(Handled::Applied)
    }
}
