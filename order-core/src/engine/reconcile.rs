//! Reconciliation: after a crash, the shop's payment rows and the processor's books may
//! disagree. A payment is written `initiated` in its own transaction before the
//! processor is asked to authorize it, so an authorization whose answer was lost is
//! found by its row; a capture happens inside the `pay` transition, so one whose
//! transaction never committed is found by asking the processor about every payment
//! the shop still thinks uncaptured. Each disagreement is settled from the processor's
//! answer, with the same idempotency keys, so running the job twice does nothing more.

use serde::Serialize;

use super::Engine;
use super::payments::PaymentCommand;
use super::rules::retry;
use crate::error::OperationError;
use crate::order::{Event, State};
use crate::payment::machine::{
    ActorKind as PaymentActor, Event as PaymentEvent, Reason as PaymentReason,
};
use crate::payment::{Balance, PaymentError};
use crate::query::OrderQuery;
use crate::types::{Actor, Command, Order, Payment};

/// What one run of [`Engine::reconcile_payments`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Reconciled {
    /// Payments compared with the processor's books.
    pub checked: usize,
    /// `initiated` payments whose authorization answer was recorded now.
    pub authorizations_settled: usize,
    /// Authorizations the processor granted for orders no longer waiting to pay,
    /// released.
    pub authorizations_voided: usize,
    /// Captures that happened without their transition, completed by firing `pay`.
    pub captures_completed: usize,
    /// Captures that happened without their transition on orders that cannot be paid
    /// any more, or money captured on cancelled orders and never refunded: refunded.
    pub captures_refunded: usize,
    /// Payments whose reference this processor does not know (made through another
    /// processor, or before its books began): left as they are.
    pub unknown: usize,
    /// Payments on which the processor holds money that payment.fsm has no transition
    /// to record (an authorization voided in the shop's books that the processor
    /// captured): left for staff, and logged.
    pub unresolved: usize,
}

/// Orders whose payments can be in doubt: waiting to pay, or cancelled.
const IN_DOUBT: [State; 3] = [State::Pending, State::Confirmed, State::Cancelled];
const PAGE: i64 = 500;

impl Engine {
    /// Settles every payment on which the shop and the processor disagree.
    pub async fn reconcile_payments(&self) -> Result<Reconciled, OperationError> {
        let mut done = Reconciled::default();
        let mut query = OrderQuery::new().in_states(&IN_DOUBT).limit(PAGE);
        loop {
            let orders = self.store.list(&query).await?;
            let Some(last) = orders.last() else {
                return Ok(done);
            };
            query = query.after(last.id);
            for order in &orders {
                self.reconcile_order(order, &mut done).await?;
            }
        }
    }

    pub(super) async fn reconcile_order(
        &self,
        order: &Order,
        done: &mut Reconciled,
    ) -> Result<(), OperationError> {
        for payment in self.store.payments(order.id).await? {
            match payment.state.as_str() {
                "initiated" => {
                    done.checked += 1;
                    self.settle_pending(payment, done).await?;
                }
                "authorized" | "voided" | "captured" | "partially_refunded" => {
                    done.checked += 1;
                    self.settle_capture(order, &payment, done).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Asks again with the payment's own key: the processor replays the answer it gave,
    /// or answers for the first time if the request never reached it.
    async fn settle_pending(
        &self,
        payment: Payment,
        done: &mut Reconciled,
    ) -> Result<(), OperationError> {
        let processor = self.payments.clone();
        let (key, amount) = (payment.idempotency_key.clone(), payment.amount_cents);
        let result = retry(self.config.processor_retries, || {
            processor.authorize(&key, amount)
        })
        .await;
        if matches!(
            result,
            Err(PaymentError::Timeout | PaymentError::Unavailable(_))
        ) {
            // Still no answer: the payment stays in doubt for the next run.
            return Ok(());
        }
        let order_id = payment.order;
        let attempt = self.settle_authorization(payment, result).await?;
        done.authorizations_settled += 1;
        let order = self.store.order(order_id).await?;
        let waiting = order.is_some_and(|o| matches!(o.state, State::Pending | State::Confirmed));
        if attempt.payment.state == "authorized" && !waiting {
            self.void_payment(attempt.payment).await?;
            done.authorizations_voided += 1;
        }
        Ok(())
    }

    /// Money the processor captured that the shop has not recorded, or recorded but
    /// never refunded on a cancelled order.
    async fn settle_capture(
        &self,
        order: &Order,
        payment: &Payment,
        done: &mut Reconciled,
    ) -> Result<(), OperationError> {
        let Some(reference) = payment.processor_ref.clone() else {
            return Ok(());
        };
        let balance = match self.payments.balance(&reference).await {
            Ok(balance) => balance,
            Err(PaymentError::Rejected(_)) => {
                done.unknown += 1;
                return Ok(());
            }
            Err(e) => return Err(OperationError::Payment(e.to_string())),
        };
        let held = balance.captured_cents - balance.refunded_cents;
        if held <= 0 {
            return Ok(());
        }
        let recorded = payment.holds_capture();
        if !recorded && order.state == State::Confirmed {
            // The `pay` that captured never committed: fire it again. Its capture key
            // is the same while the order has not moved, so the processor replays it.
            let pay = Command::new(Event::Pay, Actor::system());
            if self.fire(order.id, pay).await.is_ok() {
                done.captures_completed += 1;
                return Ok(());
            }
        }
        if order.state == State::Cancelled || !recorded {
            let current = self.store.order(order.id).await?;
            if current.is_some_and(|o| o.state == State::Paid) {
                return Ok(());
            }
            if self.refund_orphan(payment, balance).await? {
                done.captures_refunded += 1;
            } else {
                tracing::error!(payment = %payment.id, state = %payment.state, held,
                    "the processor holds money on a payment its machine cannot record");
                done.unresolved += 1;
            }
        }
        Ok(())
    }

    /// Refunds what the processor holds of `payment` through payment.fsm, recording
    /// first the capture the shop's books lack (`capture`, record only), so that the
    /// books say what the processor's do. False when the payment's state has no such
    /// path (a voided authorization).
    async fn refund_orphan(
        &self,
        payment: &Payment,
        balance: Balance,
    ) -> Result<bool, OperationError> {
        let now = self.clock.now();
        let (mut tx, mut order) = self.lock(payment.order).await?;
        let Some(mut row) = tx
            .payments(payment.order)
            .await?
            .into_iter()
            .find(|p| p.id == payment.id)
        else {
            return Ok(false);
        };
        if row.state == "authorized" {
            let capture = PaymentCommand::new(PaymentEvent::Capture, PaymentActor::System)
                .amount(balance.captured_cents)
                .key(format!("reconcile-capture-{}", payment.id))
                .record_only(None);
            row = self
                .step_payment_in(tx.as_mut(), &mut order, row, &capture, now)
                .await?
                .payment;
        }
        if !matches!(row.state.as_str(), "captured" | "partially_refunded") {
            return Ok(false);
        }
        let refund = PaymentCommand::new(PaymentEvent::Refund, PaymentActor::System)
            .reason(PaymentReason::ProcessorError)
            .amount(balance.captured_cents - balance.refunded_cents)
            .key(format!("reconcile-refund-{}", payment.id));
        self.step_payment_in(tx.as_mut(), &mut order, row, &refund, now)
            .await?;
        self.close(tx, &order).await?;
        Ok(true)
    }

    /// Releases an authorization nobody will capture.
    async fn void_payment(&self, payment: Payment) -> Result<(), OperationError> {
        let now = self.clock.now();
        let (mut tx, mut order) = self.lock(payment.order).await?;
        let void = PaymentCommand::new(PaymentEvent::Void, PaymentActor::System)
            .key(format!("order-{}-void-{}", payment.order, payment.id));
        self.step_payment_in(tx.as_mut(), &mut order, payment, &void, now)
            .await?;
        self.close(tx, &order).await
    }
}
