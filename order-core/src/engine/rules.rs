//! The order machine's guards and actions, for real: inventory through the ledger,
//! payments through the processor, shipments from their tables.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use super::Engine;
use super::payments::{PaymentCommand, PaymentRun};
use crate::error::{FireError, StoreError};
use crate::order::{Actions, Guards, State};
use crate::payment::PaymentError;
use crate::payment::machine::{
    ActorKind as PaymentActor, Event as PaymentEvent, Reason as PaymentReason,
};
use crate::store::{Movement, StoreTx};
use crate::types::{Command, Order, OrderItem, Payment, PaymentId, Product, ProductId};

/// An external effect that completed and can be undone if the transition fails later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Money captured at the processor.
    Captured {
        payment: PaymentId,
        reference: String,
        amount_cents: i64,
        key: String,
    },
}

/// What guards and actions work on: the locked order inside the transition's
/// transaction, the command, and the effects completed so far.
pub struct Step<'a> {
    pub(crate) tx: &'a mut dyn StoreTx,
    pub(crate) engine: &'a Engine,
    pub order: Order,
    pub items: Vec<OrderItem>,
    /// The lines' products as read with the lines, unlocked, when the store read them
    /// in the same round trip; the stock guard reads them itself otherwise.
    pub stock: Option<Vec<Product>>,
    pub command: &'a Command,
    /// The audit sequence number this transition will get; idempotency keys of
    /// processor calls derive from it.
    pub seq: i64,
    pub now: DateTime<Utc>,
    pub effects: Vec<Effect>,
    /// Running `undo` actions after a failure: only the recorded effects are undone.
    pub(crate) undoing: bool,
}

impl std::fmt::Debug for Step<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("order", &self.order.id)
            .field("seq", &self.seq)
            .field("effects", &self.effects)
            .field("undoing", &self.undoing)
            .finish_non_exhaustive()
    }
}

impl Step<'_> {
    /// An idempotency key for a processor call of this transition.
    fn key(&self, what: &str) -> String {
        format!("order-{}-t{}-{what}", self.order.id, self.seq)
    }

    /// The order's lines summed per product, in product id order (the locking order).
    fn quantities(&self) -> BTreeMap<ProductId, i64> {
        let mut per_product = BTreeMap::new();
        for item in &self.items {
            *per_product.entry(item.product).or_insert(0) += item.quantity;
        }
        per_product
    }

    /// Records, as the admin firing this transition, that a `refunded` payment holds
    /// money again because the processor reversed its refund (payment.fsm's
    /// `reverse_refund`).
    async fn reinstate_reversed(&mut self, payment: Payment) -> Result<Payment, FireError> {
        let actor = &self.command.actor;
        let (crate::order::ActorKind::Admin, Some(admin)) = (actor.kind, actor.id.as_deref())
        else {
            return Err(failed(
                "refund_payment",
                format!(
                    "the processor reversed the refund of payment {}: an admin refunds it again",
                    payment.id
                ),
            ));
        };
        let reason = self.command.reason.map_or(PaymentReason::Other, |r| {
            r.as_str().parse().unwrap_or(PaymentReason::Other)
        });
        let command = PaymentCommand::new(PaymentEvent::ReverseRefund, PaymentActor::Admin)
            .by(admin)
            .reason(reason);
        self.step_payment(payment, &command, "refund_payment").await
    }

    /// Runs a payment transition in this transition's transaction; a capture it
    /// makes joins this transition's effects, undone if the transition fails. Returns
    /// the payment as written.
    async fn step_payment(
        &mut self,
        payment: Payment,
        command: &PaymentCommand,
        action: &str,
    ) -> Result<Payment, FireError> {
        let run = PaymentRun {
            tx: &mut *self.tx,
            order: &mut self.order,
            effects: &mut self.effects,
            now: self.now,
        };
        let stepped = self
            .engine
            .step_payment(run, payment, command)
            .await
            .map_err(|e| failed(action, e.to_string()))?;
        Ok(stepped.payment)
    }
}

/// The guards and actions of the order machine; `'a` is the transition's borrow.
pub(crate) struct Rules<'a>(PhantomData<&'a ()>);

impl Rules<'_> {
    pub(crate) fn new() -> Self {
        Rules(PhantomData)
    }
}

fn guard_error(guard: &str) -> impl FnOnce(StoreError) -> FireError + '_ {
    move |err| FireError::GuardError {
        guard: guard.to_owned(),
        message: err.to_string(),
    }
}

fn action_error(action: &str) -> impl FnOnce(StoreError) -> FireError + '_ {
    move |err| FireError::ActionFailed {
        action: action.to_owned(),
        message: err.to_string(),
    }
}

fn failed(action: &str, message: impl Into<String>) -> FireError {
    FireError::ActionFailed {
        action: action.to_owned(),
        message: message.into(),
    }
}

impl<'a> Guards for Rules<'a> {
    type Context = Step<'a>;
    type Error = FireError;

    async fn inventory_available(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let wanted = ctx.quantities();
        let ids: Vec<ProductId> = wanted.keys().copied().collect();
        let products = match ctx.stock.take() {
            Some(read) => read,
            None => ctx
                .tx
                .stock(&ids)
                .await
                .map_err(guard_error("inventory_available"))?,
        };
        Ok(!wanted.is_empty()
            && wanted.iter().all(|(id, qty)| {
                products
                    .iter()
                    .any(|p| p.id == *id && p.available() >= *qty)
            }))
    }

    /// The latest payment covers the total: authorized, or captured already by a
    /// `pay` that failed after its capture and whose money was not given back.
    async fn payment_authorized(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(guard_error("payment_authorized"))?;
        Ok(payments
            .iter()
            .max_by_key(|p| p.attempt_no)
            .is_some_and(|p| {
                matches!(p.state.as_str(), "authorized" | "captured")
                    && p.amount_cents >= ctx.order.total_cents
            }))
    }

    async fn fraud_hold(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(guard_error("fraud_hold"))?;
        Ok(payments
            .iter()
            .max_by_key(|p| p.attempt_no)
            .is_some_and(|p| p.fraud_review))
    }

    /// The order's failed payment attempts reached the limit; a payment support
    /// retried counts each of its failures (as its `attempts_remaining` does).
    async fn payment_attempts_exhausted(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(guard_error("payment_attempts_exhausted"))?;
        let failed = super::rollup::failed_attempts(ctx.tx, &payments)
            .await
            .map_err(guard_error("payment_attempts_exhausted"))?;
        Ok(i64::try_from(failed).unwrap_or(i64::MAX) >= ctx.engine.config.max_payment_attempts)
    }

    async fn all_items_shipped(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        Ok(!ctx.items.is_empty() && ctx.items.iter().all(|i| i.qty_shipped == i.quantity))
    }

    async fn all_shipments_delivered(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let shipments = ctx
            .tx
            .shipments(ctx.order.id)
            .await
            .map_err(guard_error("all_shipments_delivered"))?;
        Ok(!shipments.is_empty() && shipments.iter().all(|s| s.state == "delivered"))
    }

    async fn no_items_shipped(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        Ok(ctx.items.iter().all(|i| i.qty_shipped == 0))
    }

    /// Every unit that left is back: returned by the customer, or (counting as not
    /// shipped any more) brought back by the carrier.
    async fn return_received(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let shipped: i64 = ctx.items.iter().map(|i| i.qty_shipped).sum();
        let returned: i64 = ctx.items.iter().map(|i| i.qty_returned).sum();
        Ok(returned == shipped)
    }

    async fn within_return_window(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let delivered = ctx
            .tx
            .entered_at(ctx.order.id, State::Delivered)
            .await
            .map_err(guard_error("within_return_window"))?;
        Ok(delivered.is_some_and(|at| ctx.now <= at + ctx.engine.config.return_window))
    }

    async fn refund_reversed_by_processor(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let refunds = ctx
            .tx
            .refunds(ctx.order.id)
            .await
            .map_err(guard_error("refund_reversed_by_processor"))?;
        Ok(refunds.iter().any(|r| r.state == "reversed"))
    }
}

impl<'a> Actions for Rules<'a> {
    type Context = Step<'a>;
    type Error = FireError;

    async fn reserve_inventory(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        // One conditional update per product, in product id order: they lock the rows
        // and never oversell, whatever the guard saw. The guard reads without a lock,
        // so the stock can go between the two; the shortfall is then the same rule's
        // refusal, `inventory_available`, found at the moment the stock is taken.
        let wanted: Vec<(ProductId, i64)> = ctx.quantities().into_iter().collect();
        let short = ctx
            .tx
            .reserve_all(ctx.order.id, &wanted, ctx.now)
            .await
            .map_err(action_error("reserve_inventory"))?;
        match short {
            None => Ok(()),
            Some(_) => Err(FireError::GuardFailed {
                event: ctx.command.event,
                guard: crate::order::Guard::InventoryAvailable,
                value: false,
                expression: "inventory_available".to_owned(),
            }),
        }
    }

    async fn release_inventory(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let held = ctx
            .tx
            .reserved_by(ctx.order.id)
            .await
            .map_err(action_error("release_inventory"))?;
        for (product, qty) in held.into_iter().filter(|(_, q)| *q > 0) {
            ctx.tx
                .move_stock(ctx.order.id, product, Movement::Release, qty, ctx.now)
                .await
                .map_err(action_error("release_inventory"))?;
        }
        Ok(())
    }

    /// Fires payment.fsm's `capture` at the order's latest authorized payment, for the
    /// order's total. The key derives from this transition and the payment, so a retry
    /// of this `pay` replays the capture while a later one on a new authorization is a
    /// new request.
    async fn capture_payment(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(action_error("capture_payment"))?;
        let Some(payment) = payments.into_iter().max_by_key(|p| p.attempt_no) else {
            return Err(failed("capture_payment", "no authorized payment"));
        };
        if payment.state == "captured" {
            return claim_capture(ctx, &payment).await;
        }
        let command = PaymentCommand::new(PaymentEvent::Capture, PaymentActor::System)
            .amount(ctx.order.total_cents)
            .key(ctx.key(&format!("capture-{}", payment.id)));
        ctx.step_payment(payment, &command, "capture_payment")
            .await
            .map(drop)
    }

    /// Fires payment.fsm's `refund` at every payment holding captured money, for all
    /// that is left of it. A payment left `refunded` whose refund the processor reversed
    /// holds money again, but only an admin may say so (`reverse_refund` is an admin's
    /// override in payment.fsm): an admin's refund of the order records it first, and
    /// anyone else's fails, naming the payment.
    async fn refund_payment(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        if ctx.undoing {
            return undo_captures(ctx).await;
        }
        let err = || action_error("refund_payment");
        let payments = ctx.tx.payments(ctx.order.id).await.map_err(err())?;
        let refunds = ctx.tx.refunds(ctx.order.id).await.map_err(err())?;
        let reason = ctx
            .command
            .reason
            .map(|r| r.as_str().parse().unwrap_or(PaymentReason::Other));
        for mut payment in payments.into_iter().filter(Payment::holds_capture) {
            let refunded: i64 = refunds
                .iter()
                .filter(|r| r.payment == payment.id && r.state == "succeeded")
                .map(|r| r.amount_cents)
                .sum();
            if payment.amount_cents - refunded <= 0 {
                continue;
            }
            if payment.state == "refunded" {
                payment = ctx.reinstate_reversed(payment).await?;
            }
            let mut command = PaymentCommand::new(PaymentEvent::Refund, PaymentActor::System)
                .key(ctx.key(&format!("refund-{}", payment.id)));
            command.reason = reason;
            ctx.step_payment(payment, &command, "refund_payment")
                .await?;
        }
        Ok(())
    }

    /// Fires payment.fsm's `void` at every authorization still open.
    async fn void_authorization(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(action_error("void_authorization"))?;
        for payment in payments.into_iter().filter(|p| p.state == "authorized") {
            let command = PaymentCommand::new(PaymentEvent::Void, PaymentActor::System)
                .key(ctx.key(&format!("void-{}", payment.id)));
            ctx.step_payment(payment, &command, "void_authorization")
                .await?;
        }
        Ok(())
    }

    async fn restock_returned_items(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let err = || action_error("restock_returned_items");
        let restocked: BTreeMap<ProductId, i64> = ctx
            .tx
            .restocked_by(ctx.order.id)
            .await
            .map_err(err())?
            .into_iter()
            .collect();
        let mut returned: BTreeMap<ProductId, i64> = BTreeMap::new();
        for item in &ctx.items {
            *returned.entry(item.product).or_insert(0) += item.qty_returned;
        }
        for (product, qty) in returned {
            let due = qty - restocked.get(&product).copied().unwrap_or(0);
            if due > 0 {
                ctx.tx
                    .move_stock(ctx.order.id, product, Movement::Restock, due, ctx.now)
                    .await
                    .map_err(err())?;
            }
        }
        Ok(())
    }
}

/// The undo of captures, after the transition failed: in the undo's transaction each
/// capture the processor made is recorded (`capture`, record only), and the engine
/// refunds it once that transaction committed ([`Engine::compensate`]), recording the
/// refund then. Recording the capture first means a row never says `authorized` for
/// money the processor took, so a retried `pay` never captures under a key whose
/// money was given back; if the refund does not go through, the payment stays
/// `captured` and a retried `pay` claims it once the processor's books show the money
/// still held.
async fn undo_captures(ctx: &mut Step<'_>) -> Result<(), FireError> {
    let payments = ctx
        .tx
        .payments(ctx.order.id)
        .await
        .map_err(action_error("refund_payment"))?;
    for effect in ctx.effects.clone() {
        let Effect::Captured {
            payment,
            amount_cents,
            key,
            ..
        } = effect;
        let Some(row) = payments.iter().find(|p| p.id == payment).cloned() else {
            continue;
        };
        if row.state != "authorized" {
            continue;
        }
        let capture = PaymentCommand::new(PaymentEvent::Capture, PaymentActor::System)
            .amount(amount_cents)
            .key(key)
            .record_only(None);
        ctx.step_payment(row, &capture, "refund_payment").await?;
    }
    Ok(())
}

/// A capture a failed `pay` made and its undo could not give back (the payment says
/// `captured`, with nothing refunded) pays the order, once the processor's books show
/// the money still held: the order's `pay` records no payment transition of its own.
async fn claim_capture(ctx: &mut Step<'_>, payment: &Payment) -> Result<(), FireError> {
    let refunds = ctx
        .tx
        .refunds(ctx.order.id)
        .await
        .map_err(action_error("capture_payment"))?;
    if refunds.iter().any(|r| r.payment == payment.id) {
        return Err(failed(
            "capture_payment",
            "the captured payment was refunded",
        ));
    }
    let reference = payment.processor_ref.clone().unwrap_or_default();
    let balance = ctx
        .engine
        .payments
        .balance(&reference)
        .await
        .map_err(|e| failed("capture_payment", e.to_string()))?;
    if balance.captured_cents - balance.refunded_cents < ctx.order.total_cents {
        return Err(failed(
            "capture_payment",
            format!(
                "the processor no longer holds the capture of payment {}",
                payment.id
            ),
        ));
    }
    Ok(())
}

/// Calls the processor, retrying a timeout with the same idempotency key, which is safe
/// because the processor does a keyed request at most once.
pub(crate) async fn retry<T, F, Fut>(retries: u32, mut call: F) -> Result<T, PaymentError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PaymentError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(PaymentError::Timeout) if attempt < retries => attempt += 1,
            other => return other,
        }
    }
}
