//! `order show`: an order with everything recorded about it; and the views of parcels
//! and refused attempts that other commands print too.

use chrono::{DateTime, SecondsFormat, Utc};
use order_core::order::{ActorKind, Event};
use order_core::{Actor, Attempt, ItemId, Order, OrderItem, Payment, Refund, Shipment, ShipmentId};
use serde::Serialize;

use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::OrderArg;
use crate::output::{out, outln};
use crate::table::{Table, money, time};

/// RFC 3339 in UTC, as `history --json` prints times.
pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Units of one order line in a parcel.
#[derive(Serialize)]
pub(super) struct ParcelLine {
    /// The order line's id.
    line: ItemId,
    quantity: i64,
}

/// A parcel as `order show` and `shipment add|update` print it.
#[derive(Serialize)]
pub(super) struct ShipmentView {
    pub id: ShipmentId,
    /// A state of `shipment.fsm`: `label_created`, `in_transit`, ..., `delivered`.
    pub state: String,
    pub carrier: String,
    pub tracking_number: Option<String>,
    lines: Vec<ParcelLine>,
    shipped_at: String,
    delivered_at: Option<String>,
}

impl From<&Shipment> for ShipmentView {
    fn from(s: &Shipment) -> ShipmentView {
        ShipmentView {
            id: s.id,
            state: s.state.clone(),
            carrier: s.carrier.clone(),
            tracking_number: s.tracking_number.clone(),
            lines: s
                .items
                .iter()
                .map(|&(line, quantity)| ParcelLine { line, quantity })
                .collect(),
            shipped_at: rfc3339(s.shipped_at),
            delivered_at: s.delivered_at.map(rfc3339),
        }
    }
}

impl ShipmentView {
    /// `1:2, 3:1`: line ids and quantities, as `shipment add --line` takes them.
    pub fn lines_text(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{}:{}", l.line, l.quantity))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A refused or failed command, as `order show` and `history --attempts` print it.
#[derive(Serialize)]
pub(super) struct AttemptView {
    event: Event,
    /// `customer:EMAIL`, `support:NAME`, `system`, ...
    actor: String,
    actor_kind: ActorKind,
    /// `step:kind`, e.g. `window:outside_window`.
    error_kind: String,
    /// The engine's words.
    error: String,
    at: String,
    #[serde(skip)]
    when: DateTime<Utc>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> AttemptView {
        AttemptView {
            event: a.event,
            actor: Actor {
                kind: a.actor_kind,
                id: a.actor_id,
            }
            .to_string(),
            actor_kind: a.actor_kind,
            error_kind: a.error_kind,
            error: a.error,
            at: rfc3339(a.at),
            when: a.at,
        }
    }
}

/// The table of refused attempts.
pub(super) fn attempts_table(attempts: &[AttemptView]) -> Table {
    let mut table = Table::new(&["AT", "EVENT", "ACTOR", "KIND", "ERROR"]);
    for a in attempts {
        table.row(vec![
            time(a.when),
            a.event.to_string(),
            a.actor.clone(),
            a.error_kind.clone(),
            a.error.clone(),
        ]);
    }
    table
}

/// An order with its lines: what `order create|modify|split|return-received --json`
/// print.
#[derive(Serialize)]
pub(super) struct OrderView<'a> {
    #[serde(flatten)]
    pub order: &'a Order,
    pub items: &'a [OrderItem],
}

/// What `order show --json` prints.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    order: &'a Order,
    items: &'a [OrderItem],
    payments: &'a [Payment],
    refunds: &'a [Refund],
    shipments: &'a [ShipmentView],
    attempts: &'a [AttemptView],
}

pub async fn show(ctx: &Context, args: &OrderArg) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    let o = order(store.as_ref(), id).await?;
    let items = store.items(id).await?;
    let payments = store.payments(id).await?;
    let refunds = store.refunds(id).await?;
    let shipments: Vec<ShipmentView> = store
        .shipments(id)
        .await?
        .iter()
        .map(ShipmentView::from)
        .collect();
    let attempts: Vec<AttemptView> = store
        .attempts(id)
        .await?
        .into_iter()
        .map(AttemptView::from)
        .collect();
    if ctx.json {
        return print_json(&Shown {
            order: &o,
            items: &items,
            payments: &payments,
            refunds: &refunds,
            shipments: &shipments,
            attempts: &attempts,
        });
    }
    let cur = o.currency.as_str();
    outln!(
        "order {} ({}) {}, customer {}, {}",
        o.id,
        o.number,
        o.state,
        o.customer_email,
        money(o.total_cents, cur)
    )?;
    outln!(
        "payment {}, fulfillment {}",
        o.payment_status,
        o.fulfillment_status
    )?;
    match &o.shipping_address {
        Some(address) => outln!("shipping address: {address}")?,
        None => outln!("no shipping address")?,
    }
    if let Some(parent) = o.parent {
        outln!("split from order {parent}")?;
    }

    let mut lines = Table::new(&["LINE", "SKU", "QTY", "SHIPPED", "RETURNED", "UNIT PRICE"])
        .right(&[0, 2, 3, 4, 5]);
    for i in &items {
        lines.row(vec![
            i.id.to_string(),
            i.sku.clone(),
            i.quantity.to_string(),
            i.qty_shipped.to_string(),
            i.qty_returned.to_string(),
            money(i.unit_price_cents, cur),
        ]);
    }
    out!("\n{lines}")?;

    if payments.is_empty() {
        outln!("\nno payments")?;
    } else {
        let mut table = Table::new(&["ATTEMPT", "STATE", "AMOUNT", "REFERENCE"]).right(&[0, 2]);
        for p in &payments {
            let mut state = p.state.clone();
            if let Some(code) = &p.failure_code {
                state.push_str(&format!(" ({code})"));
            }
            if p.fraud_review {
                state.push_str(", fraud review");
            }
            table.row(vec![
                p.attempt_no.to_string(),
                state,
                money(p.amount_cents, cur),
                p.processor_ref.clone().unwrap_or_default(),
            ]);
        }
        out!("\n{table}")?;
    }
    if !refunds.is_empty() {
        let mut table =
            Table::new(&["REFUND OF", "STATE", "AMOUNT", "REASON", "REFERENCE"]).right(&[2]);
        for r in &refunds {
            let attempt = payments.iter().find(|p| p.id == r.payment);
            table.row(vec![
                attempt.map_or_else(String::new, |p| format!("attempt {}", p.attempt_no)),
                r.state.clone(),
                money(r.amount_cents, cur),
                r.reason.clone().unwrap_or_default(),
                r.processor_ref.clone().unwrap_or_default(),
            ]);
        }
        out!("\n{table}")?;
    }

    if shipments.is_empty() {
        outln!("\nno shipments")?;
    } else {
        let mut table =
            Table::new(&["SHIPMENT", "STATE", "CARRIER", "TRACKING", "LINES"]).right(&[0]);
        for s in &shipments {
            table.row(vec![
                s.id.to_string(),
                s.state.clone(),
                s.carrier.clone(),
                s.tracking_number.clone().unwrap_or_default(),
                s.lines_text(),
            ]);
        }
        out!("\n{table}")?;
    }

    if attempts.is_empty() {
        outln!("\nno refused attempts")?;
    } else {
        out!("\nrefused attempts:\n{}", attempts_table(&attempts))?;
    }
    Ok(())
}
