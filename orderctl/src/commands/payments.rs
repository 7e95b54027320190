//! `payment update|history`: the events of `payment.fsm` fired at an order's payments
//! (partial refunds, retries, reversed refunds), and their audit trails.

use order_core::engine::PaymentCommand;
use order_core::engine::payments::MACHINE;
use order_core::payment::machine as payment;
use order_core::{OrderId, Payment, PaymentId, Store};
use serde::Serialize;
use serde_json::json;

use super::shipments::{actor_text, print_trail};
use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{PaymentArg, PaymentUpdateArgs};
use crate::output::outln;
use crate::table::money;

/// The order's payment `payment`, or an error saying it is not the order's.
async fn payment_of(store: &dyn Store, id: OrderId, payment: PaymentId) -> anyhow::Result<Payment> {
    store
        .payments(id)
        .await?
        .into_iter()
        .find(|p| p.id == payment)
        .ok_or_else(|| anyhow::anyhow!("payment {payment} is not on order {id}"))
}

/// The payment machine's command of `EVENT --as ACTOR [--reason] [--amount]`.
fn payment_command(args: &PaymentUpdateArgs) -> Result<PaymentCommand, args::UsageError> {
    let event = args::payment_event(&args.event)?;
    let (actor, who) = args::payment_actor(&args.actor)?;
    let mut command = PaymentCommand::new(event, actor);
    if let Some(who) = &who {
        command = command.by(who);
    }
    if let Some(reason) = &args.reason {
        command = command.reason(args::payment_reason(reason)?);
    }
    if let Some(amount) = args.amount {
        command = command.amount(args::cents(amount)?);
    }
    Ok(command)
}

/// A payment's transition, as `payment update --json` prints it.
#[derive(Serialize)]
struct PaymentTransition {
    event: payment::Event,
    from: payment::State,
    to: payment::State,
    seq: i64,
    /// `processor`, `support:NAME`, ...
    actor: String,
    reason: Option<payment::Reason>,
    amount_cents: Option<i64>,
}

pub async fn update(ctx: &Context, args: &PaymentUpdateArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let payment = args::payment_id(&args.payment)?;
    let command = payment_command(args)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    // A missing order or payment in the words every other command uses.
    order(store.as_ref(), id).await?;
    payment_of(store.as_ref(), id, payment).await?;
    let outcome = engine.fire_payment(id, payment, &command).await?;
    let transition = PaymentTransition {
        event: outcome.event,
        from: outcome.from,
        to: outcome.to,
        seq: outcome.seq,
        actor: actor_text(command.actor.as_str(), command.actor_id.as_deref()),
        reason: command.reason,
        amount_cents: command.amount_cents,
    };
    let current = order(store.as_ref(), id).await?;
    if ctx.json {
        let row = payment_of(store.as_ref(), id, payment).await?;
        let refunds: Vec<_> = store
            .refunds(id)
            .await?
            .into_iter()
            .filter(|r| r.payment == payment)
            .collect();
        return print_json(&json!({
            "order": current,
            "payment": row,
            "refunds": refunds,
            "transition": transition,
        }));
    }
    let amount = transition
        .amount_cents
        .map(|cents| format!(", {}", money(cents, &current.currency)))
        .unwrap_or_default();
    outln!(
        "order {id}: payment {payment} {} -> {} ({} by {}{amount}, seq {}); payment {}",
        transition.from,
        transition.to,
        transition.event,
        transition.actor,
        transition.seq,
        current.payment_status
    )?;
    Ok(())
}

pub async fn history(ctx: &Context, args: &PaymentArg) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let payment = args::payment_id(&args.payment)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    order(store.as_ref(), id).await?;
    // An empty trail and a payment of another order look alike otherwise.
    payment_of(store.as_ref(), id, payment).await?;
    let rows = store.entity_trail(MACHINE, payment.0).await?;
    print_trail(ctx, rows, &format!("payment {payment} of order {id}"))
}
