//! The order machine's guards and actions, for real: inventory through the ledger,
//! payments through the processor, shipments from their tables.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use super::{Engine, rollup};
use crate::error::{FireError, StoreError};
use crate::order::{Actions, Guards, State};
use crate::payment::PaymentError;
use crate::store::{Movement, StoreTx};
use crate::types::{Command, Order, OrderItem, PaymentId, Product, ProductId, Refund};

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

    /// Rewrites the order's payment rollup from its payment and refund rows.
    async fn refresh_payment_status(&mut self) -> Result<(), StoreError> {
        self.order.payment_status = rollup::current_payment_status(self.tx, self.order.id).await?;
        Ok(())
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

    async fn payment_authorized(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(guard_error("payment_authorized"))?;
        Ok(payments
            .iter()
            .max_by_key(|p| p.attempt_no)
            .is_some_and(|p| p.state == "authorized" && p.amount_cents >= ctx.order.total_cents))
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

    async fn payment_attempts_exhausted(&self, ctx: &mut Step<'a>) -> Result<bool, FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(guard_error("payment_attempts_exhausted"))?;
        let failed = payments
            .iter()
            .filter(|p| p.state == "declined" || p.state == "failed")
            .count();
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

    async fn capture_payment(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let payments = ctx
            .tx
            .payments(ctx.order.id)
            .await
            .map_err(action_error("capture_payment"))?;
        let Some(mut payment) = payments
            .into_iter()
            .filter(|p| p.state == "authorized")
            .max_by_key(|p| p.attempt_no)
        else {
            return Err(failed("capture_payment", "no authorized payment"));
        };
        let reference = payment.processor_ref.clone().unwrap_or_default();
        let amount = ctx.order.total_cents;
        // The payment is part of the key: a later attempt on a new authorization is a new
        // request, while a retry of this one replays.
        let key = ctx.key(&format!("capture-{}", payment.id));
        let processor = ctx.engine.payments.clone();
        let result = retry(ctx.engine.config.processor_retries, || {
            processor.capture(&key, &reference, amount)
        })
        .await;
        let effect = Effect::Captured {
            payment: payment.id,
            reference: reference.clone(),
            amount_cents: amount,
            key: key.clone(),
        };
        match result {
            Ok(()) => {}
            Err(PaymentError::Timeout) => {
                // In doubt: the processor may have captured before the answer was lost.
                // Its books decide; a capture that happened is undone with the rest.
                let balance = processor.balance(&reference).await;
                if balance.is_ok_and(|b| b.captured_cents >= amount) {
                    ctx.effects.push(effect);
                }
                return Err(failed("capture_payment", "the payment processor timed out"));
            }
            Err(err) => return Err(failed("capture_payment", err.to_string())),
        }
        ctx.engine.crash_point(super::CrashPoint::Captured);
        ctx.effects.push(effect);
        payment.state = "captured".to_owned();
        payment.amount_cents = amount;
        ctx.tx
            .update_payment(&payment, ctx.now)
            .await
            .map_err(action_error("capture_payment"))?;
        ctx.refresh_payment_status()
            .await
            .map_err(action_error("capture_payment"))
    }

    async fn refund_payment(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        if ctx.undoing {
            return undo_captures(ctx).await;
        }
        let err = || action_error("refund_payment");
        let payments = ctx.tx.payments(ctx.order.id).await.map_err(err())?;
        let refunds = ctx.tx.refunds(ctx.order.id).await.map_err(err())?;
        let processor = ctx.engine.payments.clone();
        for payment in payments.iter().filter(|p| p.state == "captured") {
            let refunded: i64 = refunds
                .iter()
                .filter(|r| r.payment == payment.id && r.state == "succeeded")
                .map(|r| r.amount_cents)
                .sum();
            let amount = payment.amount_cents - refunded;
            if amount <= 0 {
                continue;
            }
            let reference = payment.processor_ref.clone().unwrap_or_default();
            let key = ctx.key(&format!("refund-{}", payment.id));
            let refund_ref = retry(ctx.engine.config.processor_retries, || {
                processor.refund(&key, &reference, amount)
            })
            .await
            .map_err(|e| failed("refund_payment", e.to_string()))?;
            let refund = Refund {
                order: ctx.order.id,
                payment: payment.id,
                amount_cents: amount,
                state: "succeeded".to_owned(),
                reason: ctx.command.reason.map(|r| r.to_string()),
                idempotency_key: key,
                processor_ref: Some(refund_ref),
            };
            ctx.tx
                .insert_refund(&refund, ctx.now)
                .await
                .map_err(err())?;
        }
        ctx.refresh_payment_status().await.map_err(err())
    }

    async fn void_authorization(&self, ctx: &mut Step<'a>) -> Result<(), FireError> {
        let err = || action_error("void_authorization");
        let payments = ctx.tx.payments(ctx.order.id).await.map_err(err())?;
        let processor = ctx.engine.payments.clone();
        for mut payment in payments.into_iter().filter(|p| p.state == "authorized") {
            let reference = payment.processor_ref.clone().unwrap_or_default();
            let key = ctx.key(&format!("void-{}", payment.id));
            retry(ctx.engine.config.processor_retries, || {
                processor.void(&key, &reference)
            })
            .await
            .map_err(|e| failed("void_authorization", e.to_string()))?;
            payment.state = "voided".to_owned();
            ctx.tx
                .update_payment(&payment, ctx.now)
                .await
                .map_err(err())?;
        }
        ctx.refresh_payment_status().await.map_err(err())
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

/// The undo of captures, after the transition failed: the payment rows are marked
/// `refunded` in the undo's transaction, and the engine asks the processor for the
/// refunds only once that transaction committed ([`compensate`]). Recording first means
/// a row never says `authorized` for money that was already given back, so a retried
/// `pay` cannot capture it again; the opposite failure (the refund call fails after the
/// mark) leaves captured money on a row marked for refund, which reconciliation finds.
async fn undo_captures(ctx: &mut Step<'_>) -> Result<(), FireError> {
    let payments = ctx
        .tx
        .payments(ctx.order.id)
        .await
        .map_err(action_error("refund_payment"))?;
    for effect in &ctx.effects {
        let Effect::Captured { payment, .. } = effect;
        if let Some(mut row) = payments.iter().find(|p| p.id == *payment).cloned() {
            row.state = "refunded".to_owned();
            row.failure_code = Some("transition_failed".to_owned());
            ctx.tx
                .update_payment(&row, ctx.now)
                .await
                .map_err(action_error("refund_payment"))?;
        }
    }
    ctx.refresh_payment_status()
        .await
        .map_err(action_error("refund_payment"))
}

/// Gives back the money of a capture whose transition failed, once the undo is
/// recorded. The key derives from the capture's, so a repeated undo refunds once.
pub(crate) async fn compensate(engine: &Engine, effect: &Effect) -> Result<(), FireError> {
    let Effect::Captured {
        reference,
        amount_cents,
        key,
        ..
    } = effect;
    let undo_key = format!("{key}-undo");
    let processor = engine.payments.clone();
    retry(engine.config.processor_retries, || {
        processor.refund(&undo_key, reference, *amount_cents)
    })
    .await
    .map(drop)
    .map_err(|e| failed("refund_payment", e.to_string()))
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
