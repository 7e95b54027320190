//! Reconciliation: after a crash, the shop's payment rows and the processor's books may
//! disagree. A payment is written `pending` in its own transaction before the
//! processor is asked to authorize it, so an authorization whose answer was lost is
//! found by its row; a capture happens inside the `pay` transition, so one whose
//! transaction never committed is found by asking the processor about every payment
//! the shop still thinks uncaptured. Each disagreement is settled from the processor's
//! answer, with the same idempotency keys, so running the job twice does nothing more.

use serde::Serialize;

use super::Engine;
use super::rules::retry;
use crate::error::OperationError;
use crate::order::{Event, State};
use crate::payment::{Balance, PaymentError};
use crate::query::OrderQuery;
use crate::types::{Actor, Command, Order, Payment, Refund};

/// What one run of [`Engine::reconcile_payments`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Reconciled {
    /// Payments compared with the processor's books.
    pub checked: usize,
    /// `pending` payments whose authorization answer was recorded now.
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
                "pending" => {
                    done.checked += 1;
                    self.settle_pending(payment, done).await?;
                }
                "authorized" | "voided" | "captured" => {
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
        let recorded = payment.state == "captured";
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
            self.refund_orphan(payment, &reference, balance).await?;
            done.captures_refunded += 1;
        }
        Ok(())
    }

    /// Refunds what the processor holds of `payment`, and records the capture and its
    /// refund, so that the shop's books say what the processor's do.
    async fn refund_orphan(
        &self,
        payment: &Payment,
        reference: &str,
        balance: Balance,
    ) -> Result<(), OperationError> {
        let amount = balance.captured_cents - balance.refunded_cents;
        let key = format!("reconcile-refund-{}", payment.id);
        let processor = self.payments.clone();
        let refund_ref = retry(self.config.processor_retries, || {
            processor.refund(&key, reference, amount)
        })
        .await
        .map_err(|e| OperationError::Payment(e.to_string()))?;
        let mut captured = payment.clone();
        captured.state = "captured".into();
        captured.amount_cents = balance.captured_cents;
        let refund = Refund {
            order: payment.order,
            payment: payment.id,
            amount_cents: amount,
            state: "succeeded".into(),
            reason: Some("processor_error".into()),
            idempotency_key: key,
            processor_ref: Some(refund_ref),
        };
        self.record_books(payment.order, Some(&captured), Some(&refund))
            .await
    }

    /// Releases an authorization nobody will capture.
    async fn void_payment(&self, mut payment: Payment) -> Result<(), OperationError> {
        let reference = payment.processor_ref.clone().unwrap_or_default();
        let key = format!("order-{}-void-{}", payment.order, payment.id);
        let processor = self.payments.clone();
        retry(self.config.processor_retries, || {
            processor.void(&key, &reference)
        })
        .await
        .map_err(|e| OperationError::Payment(e.to_string()))?;
        payment.state = "voided".into();
        self.record_books(payment.order, Some(&payment), None).await
    }

    /// Writes a payment row and a refund the processor's books call for, with the
    /// order's payment status, in one transaction under the order's lock.
    pub(super) async fn record_books(
        &self,
        order: crate::types::OrderId,
        payment: Option<&Payment>,
        refund: Option<&Refund>,
    ) -> Result<(), OperationError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut locked = tx
            .lock_order(order)
            .await?
            .ok_or(OperationError::OrderNotFound(order))?;
        if let Some(payment) = payment {
            tx.update_payment(payment, now).await?;
        }
        if let Some(refund) = refund {
            tx.insert_refund(refund, now).await?;
        }
        locked.payment_status = super::rollup::current_payment_status(tx.as_mut(), order).await?;
        self.close(tx, &locked).await
    }
}
