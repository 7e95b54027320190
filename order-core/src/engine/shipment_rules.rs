//! The guards and actions of `shipment.fsm`, read and written in the parcel's
//! transaction.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use statemachine::{Decision, GuardExpr};

use super::Engine;
use super::machine::Evaluate;
use super::rollup;
use super::shipments::{ShipmentCommand, ShipmentError};
use crate::error::StoreError;
use crate::shipment::{Actions, Guard, Guards, Machine, State};
use crate::store::{Movement, StoreTx};
use crate::types::{EntityTransition, Order, ProductId, Shipment};

/// What a parcel's guards read and its actions change: the locked order and parcel,
/// the parcel's trail so far, and the transaction.
pub struct ShipmentStep<'a> {
    pub(crate) tx: &'a mut dyn StoreTx,
    pub(crate) engine: &'a Engine,
    pub order: Order,
    pub shipment: Shipment,
    pub trail: Vec<EntityTransition>,
    pub command: &'a ShipmentCommand,
    pub now: DateTime<Utc>,
    /// The state the transition enters, once chosen.
    pub to: Option<State>,
    /// Outbox kinds the claim actions add to the transition's notifications.
    pub claims: Vec<&'static str>,
}

impl std::fmt::Debug for ShipmentStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipmentStep")
            .field("order", &self.order.id)
            .field("shipment", &self.shipment.id)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// `shipment.fsm`'s guards and actions.
pub struct ShipmentRules<'a>(PhantomData<&'a ()>);

impl ShipmentRules<'_> {
    pub fn new() -> Self {
        ShipmentRules(PhantomData)
    }
}

impl Default for ShipmentRules<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// The parcel's guards, for the machine-level `choose`.
pub(super) struct ShipmentGuards<'s, 'a> {
    pub(super) step: &'s mut ShipmentStep<'a>,
}

impl Evaluate<Machine> for ShipmentGuards<'_, '_> {
    type Error = ShipmentError;

    async fn evaluate(
        &mut self,
        expr: &'static GuardExpr<Guard>,
    ) -> Result<Decision<Guard>, ShipmentError> {
        ShipmentRules::new().evaluate(expr, self.step).await
    }
}

fn action_error(action: &str) -> impl FnOnce(StoreError) -> ShipmentError + '_ {
    move |err| ShipmentError::ActionFailed {
        action: action.to_owned(),
        message: err.to_string(),
    }
}

impl<'a> Guards for ShipmentRules<'a> {
    type Context = ShipmentStep<'a>;
    type Error = ShipmentError;

    async fn label_not_scanned(&self, ctx: &mut ShipmentStep<'a>) -> Result<bool, ShipmentError> {
        Ok(!ctx.trail.iter().any(|row| row.actor_kind == "carrier"))
    }

    async fn attempts_exhausted(&self, ctx: &mut ShipmentStep<'a>) -> Result<bool, ShipmentError> {
        let failed = ctx
            .trail
            .iter()
            .filter(|row| row.event == "attempt_failed")
            .count();
        Ok(failed as u32 >= ctx.engine.config.max_delivery_attempts)
    }

    /// The order has an address, and no failed attempt of the parcel found it
    /// undeliverable or was refused by the recipient: trying again may succeed.
    async fn address_deliverable(&self, ctx: &mut ShipmentStep<'a>) -> Result<bool, ShipmentError> {
        let has_address = ctx
            .order
            .shipping_address
            .as_deref()
            .is_some_and(|address| !address.trim().is_empty());
        let given_up = ctx.trail.iter().any(|row| {
            row.event == "attempt_failed"
                && matches!(
                    row.reason.as_deref(),
                    Some("address_undeliverable" | "refused_by_recipient")
                )
        });
        Ok(has_address && !given_up)
    }

    async fn tracking_silent_for_window(
        &self,
        ctx: &mut ShipmentStep<'a>,
    ) -> Result<bool, ShipmentError> {
        let last_heard = ctx
            .trail
            .iter()
            .rev()
            .find(|row| row.actor_kind == "carrier")
            .map_or(ctx.shipment.shipped_at, |row| row.at);
        Ok(ctx.now - last_heard >= ctx.engine.config.tracking_silence)
    }

    /// A delivery is disputed when the command names the dispute (`"dispute"` in its
    /// metadata): the carrier's proof of delivery is contested by a case on record.
    async fn delivery_disputed(&self, ctx: &mut ShipmentStep<'a>) -> Result<bool, ShipmentError> {
        Ok(ctx
            .command
            .metadata
            .get("dispute")
            .and_then(|d| d.as_str())
            .is_some_and(|d| !d.trim().is_empty()))
    }
}

impl<'a> Actions for ShipmentRules<'a> {
    type Context = ShipmentStep<'a>;
    type Error = ShipmentError;

    /// Voids the label at the carrier (when one made it); the parcel's units come back
    /// in the `enter cancelled` hook.
    async fn void_label(&self, ctx: &mut ShipmentStep<'a>) -> Result<(), ShipmentError> {
        let (Some(carrier), Some(tracking)) = (
            ctx.engine.carrier.as_ref(),
            ctx.shipment.tracking_number.as_deref(),
        ) else {
            return Ok(());
        };
        let key = format!("void:shipment:{}", ctx.shipment.id);
        carrier
            .void_label(&key, tracking)
            .await
            .map_err(|err| ShipmentError::ActionFailed {
                action: "void_label".into(),
                message: err.to_string(),
            })
    }

    /// The scan itself is the record: the audit row keeps the carrier's event and its
    /// metadata.
    async fn record_scan(&self, _ctx: &mut ShipmentStep<'a>) -> Result<(), ShipmentError> {
        Ok(())
    }

    /// The carrier books the next attempt; the audit row of the failed one counts
    /// towards `attempts_exhausted`.
    async fn schedule_redelivery(&self, _ctx: &mut ShipmentStep<'a>) -> Result<(), ShipmentError> {
        Ok(())
    }

    /// The parcel's `delivered_at` is written with its state, from the event's time.
    async fn record_proof_of_delivery(
        &self,
        _ctx: &mut ShipmentStep<'a>,
    ) -> Result<(), ShipmentError> {
        Ok(())
    }

    async fn open_carrier_claim(&self, ctx: &mut ShipmentStep<'a>) -> Result<(), ShipmentError> {
        ctx.claims.push("carrier_claim_opened");
        Ok(())
    }

    /// A parcel found again counts as shipped again, unless its units were shipped
    /// anew meanwhile.
    async fn withdraw_carrier_claim(
        &self,
        ctx: &mut ShipmentStep<'a>,
    ) -> Result<(), ShipmentError> {
        let items = ctx
            .tx
            .items(ctx.order.id)
            .await
            .map_err(action_error("withdraw_carrier_claim"))?;
        for (item, qty) in &ctx.shipment.items {
            let Some(line) = items.iter().find(|line| line.id == *item) else {
                continue;
            };
            if line.qty_shipped + qty > line.quantity {
                return Err(ShipmentError::ActionFailed {
                    action: "withdraw_carrier_claim".into(),
                    message: format!(
                        "line {} was shipped again while the parcel was lost",
                        line.line_no
                    ),
                });
            }
            ctx.tx
                .set_shipped(*item, line.qty_shipped + qty)
                .await
                .map_err(action_error("withdraw_carrier_claim"))?;
        }
        ctx.claims.push("carrier_claim_withdrawn");
        refresh_fulfillment(ctx, State::InTransit)
            .await
            .map_err(action_error("withdraw_carrier_claim"))
    }

    /// A parcel that ended: a cancelled or returned one's units are back on the shelf
    /// (held for the order again while it can still ship them, in `processing`); a
    /// lost one's are gone. Either way they no longer count as shipped, so the order
    /// can ship them anew, or, once it ships no more, be refunded.
    async fn update_order_fulfillment(
        &self,
        ctx: &mut ShipmentStep<'a>,
    ) -> Result<(), ShipmentError> {
        let to = ctx.to.unwrap_or(State::Delivered);
        let back_on_shelf = matches!(to, State::Cancelled | State::ReturnedToSender);
        if matches!(to, State::Cancelled | State::ReturnedToSender | State::Lost) {
            unship(ctx, back_on_shelf)
                .await
                .map_err(action_error("update_order_fulfillment"))?;
        }
        refresh_fulfillment(ctx, to)
            .await
            .map_err(action_error("update_order_fulfillment"))
    }
}

/// Takes the parcel's units off the lines' shipped counts; with `back_on_shelf`, puts
/// them back in stock, held for the order again while it is in `processing`.
async fn unship(ctx: &mut ShipmentStep<'_>, back_on_shelf: bool) -> Result<(), StoreError> {
    let items = ctx.tx.items(ctx.order.id).await?;
    let mut per_product: BTreeMap<ProductId, i64> = BTreeMap::new();
    for (item, qty) in &ctx.shipment.items {
        let Some(line) = items.iter().find(|line| line.id == *item) else {
            continue;
        };
        ctx.tx
            .set_shipped(*item, (line.qty_shipped - qty).max(0))
            .await?;
        *per_product.entry(line.product).or_insert(0) += qty;
    }
    if back_on_shelf {
        let hold = ctx.order.state == crate::order::State::Processing;
        for (product, qty) in per_product {
            let (order, now) = (ctx.order.id, ctx.now);
            ctx.tx
                .move_stock(order, product, Movement::Restock, qty, now)
                .await?;
            if hold && !ctx.tx.reserve(order, product, qty, now).await? {
                return Err(StoreError::Invalid(format!(
                    "cannot hold {qty} restocked unit(s) of product {product} for order {order}"
                )));
            }
        }
    }
    Ok(())
}

/// The order's fulfillment rollup with this parcel in `to`.
async fn refresh_fulfillment(ctx: &mut ShipmentStep<'_>, to: State) -> Result<(), StoreError> {
    let items = ctx.tx.items(ctx.order.id).await?;
    let mut shipments = ctx.tx.shipments(ctx.order.id).await?;
    for parcel in &mut shipments {
        if parcel.id == ctx.shipment.id {
            parcel.state = to.as_str().to_owned();
        }
    }
    ctx.order.fulfillment_status = rollup::fulfillment_status(&items, &shipments);
    Ok(())
}
