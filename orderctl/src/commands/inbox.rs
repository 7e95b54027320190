//! `inbox receive|process|list`: carrier webhooks, kept once per event id, then applied
//! to their parcels in the carrier's order (`Engine::process_carrier_inbox`).

use std::io::Read as _;

use order_core::InboxMessage;
use order_core::carrier::CarrierEvent;
use order_core::engine::inbox::{CARRIER, InboxReport};
use serde::Serialize;
use serde_json::{Value, json};

use super::{open, print_json};
use crate::Context;
use crate::args::UsageError;
use crate::cli::{InboxListArgs, InboxReceiveArgs};
use crate::table::{Table, time};

/// The text of `file`, or of stdin for `-`.
fn read_input(file: &str) -> Result<String, UsageError> {
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text).map(drop))
    };
    read.map_err(|err| UsageError(format!("cannot read `{file}`: {err}")))?;
    Ok(text)
}

/// A webhook body: one carrier event, or an array of them. `source` names the input
/// in messages (`` `events.json` `` or `stdin`).
fn parse_events(text: &str, source: &str) -> Result<Vec<CarrierEvent>, UsageError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| UsageError(format!("{source} is not JSON: {err}")))?;
    let one = |value: Value, what: String| -> Result<CarrierEvent, UsageError> {
        let event: CarrierEvent = serde_json::from_value(value)
            .map_err(|err| UsageError(format!("{what} is not a carrier event: {err}")))?;
        if event.external_id.trim().is_empty() || event.tracking_number.trim().is_empty() {
            return Err(UsageError(format!(
                "{what} needs a non-empty external_id and tracking_number"
            )));
        }
        if event.sequence == 0 {
            return Err(UsageError(format!(
                "{what}: the carrier's sequence numbers start at 1"
            )));
        }
        Ok(event)
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Err(UsageError(format!("{source} holds no carrier events")))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| one(item, format!("{source}: item {}", i + 1)))
            .collect(),
        value => Ok(vec![one(value, source.to_owned())?]),
    }
}

/// One received event, as `inbox receive --json` prints it.
#[derive(Serialize)]
struct Received<'a> {
    external_id: &'a str,
    tracking_number: &'a str,
    kind: &'a str,
    sequence: u32,
    /// `stored`, or `duplicate` when the inbox already held it.
    result: &'static str,
}

pub async fn receive(ctx: &Context, args: &InboxReceiveArgs) -> anyhow::Result<()> {
    let source = if args.file == "-" {
        "stdin".to_owned()
    } else {
        format!("`{}`", args.file)
    };
    let events = parse_events(&read_input(&args.file)?, &source)?;
    let engine = open(ctx).await?;
    let mut received = Vec::with_capacity(events.len());
    for event in &events {
        let stored = engine.receive_carrier_event(event).await?;
        received.push(Received {
            external_id: &event.external_id,
            tracking_number: &event.tracking_number,
            kind: event.kind.as_str(),
            sequence: event.sequence,
            result: if stored { "stored" } else { "duplicate" },
        });
    }
    if ctx.json {
        return print_json(&received);
    }
    for r in &received {
        println!(
            "{} ({} #{} of {}): {}",
            r.external_id, r.kind, r.sequence, r.tracking_number, r.result
        );
    }
    Ok(())
}

/// The report's figures by name, in the order people read them.
fn report_fields(report: &InboxReport) -> [(&'static str, usize); 5] {
    [
        ("applied", report.applied),
        ("stale", report.stale),
        ("refused", report.refused),
        ("waiting", report.waiting),
        ("orders_followed", report.orders_followed),
    ]
}

pub async fn process(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let report = engine.process_carrier_inbox().await?;
    let fields = report_fields(&report);
    if ctx.json {
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(name, n)| ((*name).to_owned(), json!(n)))
            .collect();
        return print_json(&object);
    }
    println!(
        "carrier inbox: {} applied, {} stale, {} refused, {} waiting for an earlier event; \
         {} order(s) moved on",
        report.applied, report.stale, report.refused, report.waiting, report.orders_followed
    );
    Ok(())
}

pub async fn list(ctx: &Context, args: &InboxListArgs) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let messages: Vec<InboxMessage> = engine
        .store()
        .inbox(CARRIER)
        .await?
        .into_iter()
        .filter(|m| !args.pending || m.processed_at.is_none())
        .collect();
    if ctx.json {
        return print_json(&messages);
    }
    if messages.is_empty() {
        let which = if args.pending { "pending " } else { "" };
        println!("no {which}carrier messages");
        return Ok(());
    }
    let mut table = Table::new(&[
        "RECEIVED",
        "EXTERNAL ID",
        "TRACKING",
        "EVENT",
        "SEQ",
        "OUTCOME",
    ])
    .right(&[4]);
    for m in &messages {
        let field = |name: &str| match m.payload.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        table.row(vec![
            time(m.received_at),
            m.external_id.clone(),
            field("tracking_number"),
            field("kind"),
            field("sequence"),
            m.outcome.clone().unwrap_or_else(|| "pending".to_owned()),
        ]);
    }
    print!("{table}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_events;

    const PICK_UP: &str = r#"{"external_id": "e1", "tracking_number": "T-1", "kind": "pick_up",
        "occurred_at": "2026-03-04T09:00:00Z", "sequence": 1}"#;

    #[test]
    fn a_webhook_is_one_event_or_an_array_of_them() {
        assert_eq!(parse_events(PICK_UP, "stdin").expect("one").len(), 1);
        let two = format!("[{PICK_UP}, {PICK_UP}]");
        assert_eq!(parse_events(&two, "stdin").expect("two").len(), 2);
    }

    #[test]
    fn bad_webhooks_are_one_line_usage_errors() {
        let refused = |text: &str| parse_events(text, "`f`").expect_err("refused").0;
        assert!(refused("{").starts_with("`f` is not JSON: "));
        assert_eq!(refused("[]"), "`f` holds no carrier events");
        let kind = refused(&PICK_UP.replace("pick_up", "teleport"));
        assert!(kind.starts_with("`f` is not a carrier event: unknown variant `teleport`"));
        let second = refused(&format!("[{PICK_UP}, 3]"));
        assert!(
            second.starts_with("`f`: item 2 is not a carrier event"),
            "{second}"
        );
        let zero = refused(&PICK_UP.replace("\"sequence\": 1", "\"sequence\": 0"));
        assert_eq!(zero, "`f`: the carrier's sequence numbers start at 1");
        let empty = refused(&PICK_UP.replace("\"e1\"", "\" \""));
        assert!(empty.contains("non-empty external_id"), "{empty}");
        for message in [kind, second] {
            assert_eq!(message.lines().count(), 1, "{message}");
        }
    }
}
