//! `order create`, `list`, `stats`, `history`: orders and their audit trails.

use order_core::order::{ActorKind, Event, Reason, State};
use order_core::{FulfillmentStatus, NewOrder, OrderQuery, PaymentStatus};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::show::{AttemptView, OrderView, attempts_table};
use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{HistoryArgs, ListArgs, OrderCreateArgs};
use crate::output::{out, outln};
use crate::table::{Table, money, time};

pub async fn create(ctx: &Context, args: &OrderCreateArgs) -> anyhow::Result<()> {
    let items = args
        .items
        .iter()
        .map(|text| args::item(text))
        .collect::<Result<Vec<_>, _>>()?;
    if args.customer.trim().is_empty() {
        return Err(args::UsageError("--customer needs an email".to_owned()).into());
    }
    let engine = open(ctx).await?;
    let new = NewOrder {
        customer_email: args.customer.trim().to_owned(),
        items,
        shipping_address: args.address.clone(),
        currency: "EUR".to_owned(),
    };
    let created = engine.create_order(&new).await?;
    let lines = engine.store().items(created.id).await?;
    if ctx.json {
        return print_json(&OrderView {
            order: &created,
            items: &lines,
        });
    }
    let units: i64 = lines.iter().map(|line| line.quantity).sum();
    outln!(
        "order {} ({}) {}, {units} item{}, {}, customer {}",
        created.id,
        created.number,
        created.state,
        if units == 1 { "" } else { "s" },
        money(created.total_cents, &created.currency),
        created.customer_email
    )?;
    Ok(())
}

pub async fn list(ctx: &Context, args: &ListArgs) -> anyhow::Result<()> {
    let mut query = OrderQuery::new();
    if let Some(text) = &args.state {
        query = query.in_states(&args::states(text, "--state")?);
    }
    if let Some(text) = &args.not_state {
        query = query.not_in_states(&args::states(text, "--not-state")?);
    }
    if let Some(email) = &args.customer {
        query = query.customer(email.trim());
    }
    if let Some(limit) = args.limit {
        query = query.limit(i64::from(limit));
    }
    let engine = open(ctx).await?;
    let orders = engine.store().list(&query).await?;
    if ctx.json {
        return print_json(&orders);
    }
    if orders.is_empty() {
        outln!("no orders")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "NUMBER",
        "STATE",
        "CUSTOMER",
        "TOTAL",
        "PAYMENT",
        "FULFILLMENT",
        "UPDATED",
    ])
    .right(&[0, 4]);
    for o in &orders {
        table.row(vec![
            o.id.to_string(),
            o.number.clone(),
            o.state.to_string(),
            o.customer_email.clone(),
            money(o.total_cents, &o.currency),
            o.payment_status.to_string(),
            o.fulfillment_status.to_string(),
            time(o.updated_at),
        ]);
    }
    out!("{table}")?;
    Ok(())
}

/// Counts per state, payment status and fulfillment status; every name of each is
/// listed, with zero when no order has it, so that the shape never changes.
pub async fn stats(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let store = engine.store();
    let per_state = store.count_by_state(&OrderQuery::new()).await?;
    let (payment, fulfillment) = store.count_by_status().await?;
    let count = |counts: &[(String, i64)], name: &str| {
        counts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, count)| *count)
    };
    let states: Vec<(&str, i64)> = State::ALL
        .iter()
        .map(|&s| {
            let n = per_state
                .iter()
                .find(|(t, _)| *t == s)
                .map_or(0, |(_, n)| *n);
            (s.as_str(), n)
        })
        .collect();
    let payment: Vec<(&str, i64)> = PaymentStatus::ALL
        .iter()
        .map(|s| (s.as_str(), count(&payment, s.as_str())))
        .collect();
    let fulfillment: Vec<(&str, i64)> = FulfillmentStatus::ALL
        .iter()
        .map(|s| (s.as_str(), count(&fulfillment, s.as_str())))
        .collect();
    let total: i64 = states.iter().map(|(_, n)| n).sum();
    if ctx.json {
        let object = |counts: &[(&str, i64)]| {
            Value::Object(
                counts
                    .iter()
                    .map(|(name, n)| ((*name).to_owned(), json!(n)))
                    .collect::<Map<_, _>>(),
            )
        };
        return print_json(&json!({
            "total": total,
            "states": object(&states),
            "payment": object(&payment),
            "fulfillment": object(&fulfillment),
        }));
    }
    let section = |title: &str, counts: &[(&str, i64)]| {
        let mut table = Table::new(&[title, "ORDERS"]).right(&[1]);
        for (name, n) in counts {
            table.row(vec![(*name).to_owned(), n.to_string()]);
        }
        table
    };
    let mut by_state = section("STATE", &states);
    by_state.row(vec!["total".to_owned(), total.to_string()]);
    out!(
        "{by_state}\n{}\n{}",
        section("PAYMENT", &payment),
        section("FULFILLMENT", &fulfillment)
    )?;
    Ok(())
}

/// One audit row as `history --json` prints it.
#[derive(Serialize)]
struct Entry {
    seq: i64,
    event: Event,
    from: State,
    to: State,
    /// `customer:EMAIL`, `support:NAME`, `system`, ...
    actor: String,
    actor_kind: ActorKind,
    reason: Option<Reason>,
    note: Option<String>,
    #[serde(rename = "override")]
    is_override: bool,
    /// RFC 3339, UTC.
    at: String,
    idempotency_key: Option<String>,
    #[serde(skip)]
    when: chrono::DateTime<chrono::Utc>,
}

pub async fn history(ctx: &Context, args: &HistoryArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let engine = open(ctx).await?;
    let store = engine.store();
    // An empty trail and a missing order look alike otherwise.
    order(store.as_ref(), id).await?;
    let entries: Vec<Entry> = store
        .history(id)
        .await?
        .into_iter()
        .map(|r| Entry {
            seq: r.seq,
            event: r.event,
            from: r.from,
            to: r.to,
            actor: order_core::Actor {
                kind: r.actor_kind,
                id: r.actor_id,
            }
            .to_string(),
            actor_kind: r.actor_kind,
            reason: r.reason,
            note: r.note,
            is_override: r.is_override,
            at: r.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            idempotency_key: r.idempotency_key,
            when: r.at,
        })
        .collect();
    let attempts: Option<Vec<AttemptView>> = if args.attempts {
        let attempts = store.attempts(id).await?;
        Some(attempts.into_iter().map(AttemptView::from).collect())
    } else {
        None
    };
    if ctx.json {
        return match &attempts {
            Some(attempts) => print_json(&json!({ "trail": entries, "attempts": attempts })),
            None => print_json(&entries),
        };
    }
    if entries.is_empty() {
        outln!("order {id} has no transitions yet")?;
    } else {
        out!("{}", trail_table(&entries))?;
    }
    match &attempts {
        Some(attempts) if attempts.is_empty() => outln!("\nno refused attempts")?,
        Some(attempts) => out!("\nrefused attempts:\n{}", attempts_table(attempts))?,
        None => {}
    }
    Ok(())
}

fn trail_table(entries: &[Entry]) -> Table {
    let mut table = Table::new(&[
        "SEQ", "AT", "EVENT", "FROM", "TO", "ACTOR", "REASON", "NOTE",
    ])
    .right(&[0]);
    for e in entries {
        let event = if e.is_override {
            format!("{} (override)", e.event)
        } else {
            e.event.to_string()
        };
        table.row(vec![
            e.seq.to_string(),
            time(e.when),
            event,
            e.from.to_string(),
            e.to.to_string(),
            e.actor.clone(),
            e.reason.map(|r| r.to_string()).unwrap_or_default(),
            e.note.clone().unwrap_or_default(),
        ]);
    }
    table
}
