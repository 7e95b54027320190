//! `shipment add|update`: parcels and what the carrier reports of them.

use order_core::engine::ShipmentLine;
use order_core::order::Operation;
use order_core::{OrderId, ShipmentId, Store};
use serde_json::json;

use super::show::ShipmentView;
use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{ShipmentAddArgs, ShipmentUpdateArgs};

/// Prints the order and the parcel (JSON), or `order ID: WHAT; fulfillment STATUS`.
async fn print_parcel(
    ctx: &Context,
    store: &dyn Store,
    id: OrderId,
    shipment: ShipmentId,
    what: impl FnOnce(&ShipmentView) -> String,
) -> anyhow::Result<()> {
    let current = order(store, id).await?;
    let parcel = store
        .shipments(id)
        .await?
        .iter()
        .find(|s| s.id == shipment)
        .map(ShipmentView::from)
        .ok_or_else(|| anyhow::anyhow!("shipment {shipment} of order {id} disappeared"))?;
    if ctx.json {
        return print_json(&json!({ "order": current, "shipment": parcel }));
    }
    println!(
        "order {id}: {}; fulfillment {}",
        what(&parcel),
        current.fulfillment_status
    );
    Ok(())
}

/// `--line` quantities, one per line: a line given twice ships the sum, so the engine
/// checks the sum against what is left (it checks each entry on its own).
fn merged_lines(texts: &[String]) -> Result<Vec<ShipmentLine>, args::UsageError> {
    let mut lines: Vec<ShipmentLine> = Vec::new();
    for text in texts {
        let (item, quantity) = args::shipment_line(text)?;
        match lines.iter_mut().find(|l| l.item == item) {
            Some(line) => line.quantity += quantity,
            None => lines.push(ShipmentLine { item, quantity }),
        }
    }
    Ok(lines)
}

pub async fn add(ctx: &Context, args: &ShipmentAddArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let requested = merged_lines(&args.lines)?;
    let carrier = args::text(&args.carrier, "--carrier")?;
    let tracking = args
        .tracking
        .as_deref()
        .map(|t| args::text(t, "--tracking"))
        .transpose()?;
    let engine = open(ctx).await?;
    let store = engine.store();
    let current = order(store.as_ref(), id).await?;
    let items = store.items(id).await?;
    let lines = if args.all {
        items
            .iter()
            .filter(|i| i.quantity > i.qty_shipped)
            .map(|i| ShipmentLine {
                item: i.id,
                quantity: i.quantity - i.qty_shipped,
            })
            .collect()
    } else {
        requested
    };
    // Where shipping is not allowed the engine says so. Where it is, the quantities
    // are checked here first, in the line ids that `order show` lists and `--line`
    // takes (the engine's message numbers lines by their position in the order); the
    // engine checks them again under the order's lock.
    if current.state.allows(Operation::AddShipment) {
        if args.all && lines.is_empty() {
            anyhow::bail!("order {id} has no units left to ship");
        }
        for line in &lines {
            if let Some(item) = items.iter().find(|i| i.id == line.item) {
                let left = item.quantity - item.qty_shipped;
                if line.quantity > left {
                    anyhow::bail!(
                        "line {} ({}) of order {id} has {left} unit(s) left to ship, not {}",
                        item.id,
                        item.sku,
                        line.quantity
                    );
                }
            }
        }
    }
    let shipment = engine.add_shipment(id, &lines, carrier, tracking).await?;
    print_parcel(ctx, store.as_ref(), id, shipment, |parcel| {
        let mut what = format!("shipment {shipment} by {carrier}");
        if let Some(tracking) = tracking {
            what.push_str(&format!(" (tracking {tracking})"));
        }
        format!("{what} with {}", parcel.lines_text())
    })
    .await
}

pub async fn update(ctx: &Context, args: &ShipmentUpdateArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let shipment = args::shipment_id(&args.shipment)?;
    let state = args::shipment_state(&args.state)?;
    let engine = open(ctx).await?;
    engine.shipment_update(id, shipment, state).await?;
    print_parcel(ctx, engine.store().as_ref(), id, shipment, |_| {
        format!("shipment {shipment} {state}")
    })
    .await
}

#[cfg(test)]
mod tests {
    use order_core::ItemId;

    use super::*;

    #[test]
    fn a_line_given_twice_ships_the_sum() {
        let texts = ["3:1", "4:2", "3:2"].map(str::to_owned);
        let lines = merged_lines(&texts).expect("valid");
        let pairs: Vec<(ItemId, i64)> = lines.iter().map(|l| (l.item, l.quantity)).collect();
        assert_eq!(pairs, [(ItemId(3), 3), (ItemId(4), 2)]);
        assert!(merged_lines(&["3".to_owned()]).is_err());
    }
}
