//! `order authorize|modify|address|note|split|return-received`: the engine's
//! operations on an order within its state. A refusal (`OperationError`: not allowed
//! in this state, out of stock, a line not on the order) exits 1 with the engine's
//! words, which name the states that allow the operation.

use crate::output::outln;
use order_core::{ItemId, Order, OrderId, Store};
use serde_json::json;

use super::show::OrderView;
use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{OrderAddressArgs, OrderArg, OrderModifyArgs, OrderNoteArgs, OrderSplitArgs};
use crate::table::money;

/// `3 items, 45.00 EUR`.
fn units(store_items: &[order_core::OrderItem], order: &Order) -> String {
    let units: i64 = store_items.iter().map(|line| line.quantity).sum();
    format!(
        "{units} item{}, {}",
        if units == 1 { "" } else { "s" },
        money(order.total_cents, &order.currency)
    )
}

/// Prints the order with its lines (JSON), or `order ID: WHAT, N items, TOTAL`.
async fn print_order(
    ctx: &Context,
    store: &dyn Store,
    id: OrderId,
    what: &str,
) -> anyhow::Result<()> {
    let current = order(store, id).await?;
    let items = store.items(id).await?;
    if ctx.json {
        return print_json(&OrderView {
            order: &current,
            items: &items,
        });
    }
    outln!("order {id}: {what}, {}", units(&items, &current))?;
    Ok(())
}

/// Asks the processor to authorize the order's total. The attempt is recorded whatever
/// the answer; a decline or failure exits 1 after printing it.
pub async fn authorize(ctx: &Context, args: &OrderArg) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let engine = open(ctx).await?;
    let attempt = engine.authorize_payment(id).await?;
    let current = order(engine.store().as_ref(), id).await?;
    let p = &attempt.payment;
    if ctx.json {
        print_json(&json!({
            "order": id,
            "outcome": attempt.outcome,
            "payment_status": current.payment_status,
            "payment": p,
        }))?;
    } else {
        let mut line = format!(
            "order {id}: payment attempt {} {}, {}",
            p.attempt_no,
            attempt.outcome,
            money(p.amount_cents, &current.currency)
        );
        if let Some(reference) = &p.processor_ref {
            line.push_str(&format!(", reference {reference}"));
        }
        if let Some(code) = &p.failure_code {
            line.push_str(&format!(" ({code})"));
        }
        if p.fraud_review {
            line.push_str(", held for a fraud review");
        }
        outln!("{line}; payment {}", current.payment_status)?;
    }
    if attempt.outcome != "authorized" {
        anyhow::bail!(
            "payment attempt {} of order {id} {}: {}",
            p.attempt_no,
            attempt.outcome,
            p.failure_code.as_deref().unwrap_or("no reason given")
        );
    }
    Ok(())
}

/// Replaces the order's lines.
pub async fn modify(ctx: &Context, args: &OrderModifyArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let items = args
        .items
        .iter()
        .map(|text| args::item(text))
        .collect::<Result<Vec<_>, _>>()?;
    let engine = open(ctx).await?;
    let wanted: Vec<(&str, i64)> = items.iter().map(|(sku, q)| (sku.as_str(), *q)).collect();
    engine.modify_items(id, &wanted).await?;
    let what = format!(
        "now {} line{}",
        wanted.len(),
        if wanted.len() == 1 { "" } else { "s" }
    );
    print_order(ctx, engine.store().as_ref(), id, &what).await
}

pub async fn address(ctx: &Context, args: &OrderAddressArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let address = args::text(&args.address, "the address")?;
    let engine = open(ctx).await?;
    engine.change_address(id, address).await?;
    let current = order(engine.store().as_ref(), id).await?;
    if ctx.json {
        return print_json(&current);
    }
    outln!("order {id}: shipping address set to `{address}`")?;
    Ok(())
}

pub async fn note(ctx: &Context, args: &OrderNoteArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let body = args::text(&args.text, "the note")?;
    let author = args::text(&args.author, "--as")?;
    let engine = open(ctx).await?;
    engine.add_note(id, author, body).await?;
    if ctx.json {
        return print_json(&json!({ "order": id, "author": author, "note": body }));
    }
    outln!("order {id}: note added by {author}")?;
    Ok(())
}

/// Moves lines into a new child order; prints the child.
pub async fn split(ctx: &Context, args: &OrderSplitArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let mut lines: Vec<ItemId> = Vec::new();
    for text in &args.lines {
        let line = args::line_id(text)?;
        // The engine counts a repeated line as a line that is not on the order.
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let engine = open(ctx).await?;
    let store = engine.store();
    let child = engine.split(id, &lines).await?;
    let child = order(store.as_ref(), child.id).await?;
    let items = store.items(child.id).await?;
    if ctx.json {
        return print_json(&OrderView {
            order: &child,
            items: &items,
        });
    }
    let parent = order(store.as_ref(), id).await?;
    let parent_items = store.items(id).await?;
    outln!(
        "order {} ({}) split from order {id}: {}, {}; order {id} keeps {}",
        child.id,
        child.number,
        child.state,
        units(&items, &child),
        units(&parent_items, &parent)
    )?;
    Ok(())
}

/// The warehouse has the returned units: each line's shipped units count as returned.
pub async fn return_received(ctx: &Context, args: &OrderArg) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let engine = open(ctx).await?;
    engine.receive_return(id).await?;
    let store = engine.store();
    if ctx.json {
        return print_order(ctx, store.as_ref(), id, "").await;
    }
    let current = order(store.as_ref(), id).await?;
    let returned: i64 = store
        .items(id)
        .await?
        .iter()
        .map(|line| line.qty_returned)
        .sum();
    outln!(
        "order {id}: {returned} returned unit{} received; fulfillment {}",
        if returned == 1 { "" } else { "s" },
        current.fulfillment_status
    )?;
    Ok(())
}
