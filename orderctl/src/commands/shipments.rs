//! `shipment add|update|history`: parcels, the events of `shipment.fsm` fired at them,
//! and their audit trails.

use order_core::engine::shipments::MACHINE;
use order_core::engine::{ShipmentCommand, ShipmentLine};
use order_core::order::Operation;
use order_core::{EntityTransition, OrderId, ShipmentId, Store, shipment};
use serde::Serialize;
use serde_json::json;

use super::show::{ShipmentView, rfc3339};
use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{ShipmentAddArgs, ShipmentArg, ShipmentUpdateArgs};
use crate::output::{out, outln};
use crate::table::{Table, time};

/// Prints the order and the parcel (JSON), or `order ID: WHAT; fulfillment STATUS`.
async fn print_parcel(
    ctx: &Context,
    store: &dyn Store,
    id: OrderId,
    shipment: ShipmentId,
    what: impl FnOnce(&ShipmentView) -> String,
) -> anyhow::Result<()> {
    let current = order(store, id).await?;
    let parcel = parcel_view(store, id, shipment).await?;
    if ctx.json {
        return print_json(&json!({ "order": current, "shipment": parcel }));
    }
    outln!(
        "order {id}: {}; fulfillment {}",
        what(&parcel),
        current.fulfillment_status
    )?;
    Ok(())
}

/// The order's parcel `shipment`, or an error saying it is not the order's.
async fn parcel_view(
    store: &dyn Store,
    id: OrderId,
    shipment: ShipmentId,
) -> anyhow::Result<ShipmentView> {
    store
        .shipments(id)
        .await?
        .iter()
        .find(|s| s.id == shipment)
        .map(ShipmentView::from)
        .ok_or_else(|| anyhow::anyhow!("shipment {shipment} is not on order {id}"))
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

/// The shipment machine's command of `EVENT --as ACTOR [--reason] [--dispute]`.
fn shipment_command(args: &ShipmentUpdateArgs) -> Result<ShipmentCommand, args::UsageError> {
    let event = args::shipment_event(&args.event)?;
    let (actor, who) = args::shipment_actor(&args.actor)?;
    let mut command = ShipmentCommand::new(event, actor);
    if let Some(who) = &who {
        command = command.by(who);
    }
    if let Some(reason) = &args.reason {
        command = command.reason(args::shipment_reason(reason)?);
    }
    if let Some(dispute) = &args.dispute {
        // What the `delivery_disputed` guard reads.
        let dispute = args::text(dispute, "--dispute")?;
        command = command.metadata(json!({ "dispute": dispute }));
    }
    Ok(command)
}

/// A parcel's transition, as `shipment update --json` prints it.
#[derive(Serialize)]
struct ParcelTransition {
    event: shipment::Event,
    from: shipment::State,
    to: shipment::State,
    seq: i64,
    /// `carrier`, `support:NAME`, ...
    actor: String,
    reason: Option<shipment::Reason>,
}

/// `carrier` or `support:sam`.
pub(super) fn actor_text(kind: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{kind}:{id}"),
        None => kind.to_owned(),
    }
}

pub async fn update(ctx: &Context, args: &ShipmentUpdateArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let shipment = args::shipment_id(&args.shipment)?;
    let command = shipment_command(args)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    // A missing order or parcel in the words every other command uses.
    order(store.as_ref(), id).await?;
    parcel_view(store.as_ref(), id, shipment).await?;
    let outcome = engine.fire_shipment(id, shipment, &command).await?;
    // As after a carrier webhook: the order ships, is delivered or comes back once
    // its parcels say so.
    let followed = engine.follow_parcels(id).await;
    let transition = ParcelTransition {
        event: outcome.event,
        from: outcome.from,
        to: outcome.to,
        seq: outcome.seq,
        actor: actor_text(command.actor.as_str(), command.actor_id.as_deref()),
        reason: command.reason,
    };
    if ctx.json {
        let current = order(store.as_ref(), id).await?;
        let parcel = parcel_view(store.as_ref(), id, shipment).await?;
        return print_json(&json!({
            "order": current,
            "shipment": parcel,
            "transition": transition,
            "order_transition": followed,
        }));
    }
    print_parcel(ctx, store.as_ref(), id, shipment, |_| {
        format!(
            "shipment {shipment} {} -> {} ({} by {}, seq {})",
            transition.from, transition.to, transition.event, transition.actor, transition.seq
        )
    })
    .await?;
    if let Some(followed) = followed {
        outln!(
            "order {id} follows its parcels: {} -> {} ({}, seq {})",
            followed.from,
            followed.to,
            followed.event,
            followed.seq
        )?;
    }
    Ok(())
}

/// One row of a parcel's or a payment's audit trail, as `shipment history --json` and
/// `payment history --json` print it.
#[derive(Serialize)]
struct TrailEntry {
    seq: i64,
    event: String,
    from: String,
    to: String,
    /// `carrier`, `processor`, `support:NAME`, ...
    actor: String,
    actor_kind: String,
    reason: Option<String>,
    #[serde(rename = "override")]
    is_override: bool,
    /// RFC 3339, UTC: when it happened (a carrier event's own time).
    at: String,
    /// The carrier's or processor's event (inbox message) that caused it.
    external_id: Option<String>,
    /// What came with the command: the carrier's sequence number, a dispute, ...
    metadata: serde_json::Value,
    #[serde(skip)]
    when: chrono::DateTime<chrono::Utc>,
}

impl From<EntityTransition> for TrailEntry {
    fn from(row: EntityTransition) -> TrailEntry {
        TrailEntry {
            seq: row.seq,
            actor: actor_text(&row.actor_kind, row.actor_id.as_deref()),
            event: row.event,
            from: row.from,
            to: row.to,
            actor_kind: row.actor_kind,
            reason: row.reason,
            is_override: row.is_override,
            at: rfc3339(row.at),
            external_id: row.external_id,
            metadata: row.metadata,
            when: row.at,
        }
    }
}

pub async fn history(ctx: &Context, args: &ShipmentArg) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let shipment = args::shipment_id(&args.shipment)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    order(store.as_ref(), id).await?;
    // An empty trail and a parcel of another order look alike otherwise.
    parcel_view(store.as_ref(), id, shipment).await?;
    let rows = store.entity_trail(MACHINE, shipment.0).await?;
    print_trail(ctx, rows, &format!("shipment {shipment} of order {id}"))
}

/// A payment's or a parcel's audit trail (`what` names it when it is empty), as a
/// table or, with `--json`, as an array.
pub(super) fn print_trail(
    ctx: &Context,
    rows: Vec<EntityTransition>,
    what: &str,
) -> anyhow::Result<()> {
    let entries: Vec<TrailEntry> = rows.into_iter().map(TrailEntry::from).collect();
    if ctx.json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        outln!("{what} has no transitions yet")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "SEQ",
        "AT",
        "EVENT",
        "FROM",
        "TO",
        "ACTOR",
        "REASON",
        "EXTERNAL ID",
    ])
    .right(&[0]);
    for e in &entries {
        let event = if e.is_override {
            format!("{} (override)", e.event)
        } else {
            e.event.clone()
        };
        table.row(vec![
            e.seq.to_string(),
            time(e.when),
            event,
            e.from.clone(),
            e.to.clone(),
            e.actor.clone(),
            e.reason.clone().unwrap_or_default(),
            e.external_id.clone().unwrap_or_default(),
        ]);
    }
    out!("{table}")?;
    Ok(())
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
