//! `inbox receive|process|list`: webhooks, kept once per (source, event id), then
//! handled. The carrier's are applied to their parcels in the carrier's order
//! (`Engine::process_carrier_inbox`); the payment processor's are compared with the
//! payments' books (`Engine::process_processor_inbox`).

use crate::output::{out, outln};
use std::io::Read as _;

use order_core::InboxMessage;
use order_core::carrier::CarrierEvent;
use order_core::engine::inbox::{CARRIER, InboxReport};
use order_core::engine::processor_inbox::{PROCESSOR, ProcessorInbox};
use order_core::payment::ProcessorEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{open, print_json};
use crate::Context;
use crate::args::UsageError;
use crate::cli::{InboxListArgs, InboxReceiveArgs, InboxSource};
use crate::table::{Table, money, time};

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

/// A webhook's event, as `inbox receive` takes it.
trait Webhook: DeserializeOwned {
    /// What it is called in messages: `carrier event`.
    const WHAT: &'static str;
    /// Why a well-formed event cannot be kept, if it cannot (`what` names it).
    fn check(&self, what: &str) -> Result<(), UsageError>;
}

impl Webhook for CarrierEvent {
    const WHAT: &'static str = "carrier event";

    fn check(&self, what: &str) -> Result<(), UsageError> {
        if self.external_id.trim().is_empty() || self.tracking_number.trim().is_empty() {
            return Err(UsageError(format!(
                "{what} needs a non-empty external_id and tracking_number"
            )));
        }
        if self.sequence == 0 {
            return Err(UsageError(format!(
                "{what}: the carrier's sequence numbers start at 1"
            )));
        }
        Ok(())
    }
}

impl Webhook for ProcessorEvent {
    const WHAT: &'static str = "processor event";

    fn check(&self, what: &str) -> Result<(), UsageError> {
        if self.external_id.trim().is_empty() || self.reference.trim().is_empty() {
            return Err(UsageError(format!(
                "{what} needs a non-empty external_id and reference"
            )));
        }
        if self.sequence == 0 {
            return Err(UsageError(format!(
                "{what}: the processor's sequence numbers start at 1"
            )));
        }
        if self.amount_cents < 0 {
            return Err(UsageError(format!(
                "{what}: amount_cents must not be negative, got {}",
                self.amount_cents
            )));
        }
        Ok(())
    }
}

/// A webhook body: one event, or an array of them. `source` names the input in
/// messages (`` `events.json` `` or `stdin`).
fn parse_events<T: Webhook>(text: &str, source: &str) -> Result<Vec<T>, UsageError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| UsageError(format!("{source} is not JSON: {err}")))?;
    let one = |value: Value, what: String| -> Result<T, UsageError> {
        let event: T = serde_json::from_value(value)
            .map_err(|err| UsageError(format!("{what} is not a {}: {err}", T::WHAT)))?;
        event.check(&what)?;
        Ok(event)
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Err(UsageError(format!("{source} holds no {}s", T::WHAT)))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| one(item, format!("{source}: item {}", i + 1)))
            .collect(),
        value => Ok(vec![one(value, source.to_owned())?]),
    }
}

/// One received event, as `inbox receive --json` prints it: a carrier's names its
/// parcel by tracking number, a processor's its payment by reference.
#[derive(Serialize)]
struct Received<'a> {
    external_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    kind: &'a str,
    sequence: u32,
    /// `stored`, or `duplicate` when the inbox already held it.
    result: &'static str,
}

fn stored(new: bool) -> &'static str {
    if new { "stored" } else { "duplicate" }
}

pub async fn receive(ctx: &Context, args: &InboxReceiveArgs) -> anyhow::Result<()> {
    let source = if args.file == "-" {
        "stdin".to_owned()
    } else {
        format!("`{}`", args.file)
    };
    let text = read_input(&args.file)?;
    match args.source {
        InboxSource::Carrier => receive_carrier(ctx, parse_events(&text, &source)?).await,
        InboxSource::Processor => receive_processor(ctx, parse_events(&text, &source)?).await,
    }
}

async fn receive_carrier(ctx: &Context, events: Vec<CarrierEvent>) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let mut received = Vec::with_capacity(events.len());
    for event in &events {
        let new = engine.receive_carrier_event(event).await?;
        received.push(Received {
            external_id: &event.external_id,
            tracking_number: Some(&event.tracking_number),
            reference: None,
            kind: event.kind.as_str(),
            sequence: event.sequence,
            result: stored(new),
        });
    }
    print_received(ctx, &received)
}

async fn receive_processor(ctx: &Context, events: Vec<ProcessorEvent>) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let mut received = Vec::with_capacity(events.len());
    for event in &events {
        let new = engine.receive_processor_event(event).await?;
        received.push(Received {
            external_id: &event.external_id,
            tracking_number: None,
            reference: Some(&event.reference),
            kind: event.kind.as_str(),
            sequence: event.sequence,
            result: stored(new),
        });
    }
    print_received(ctx, &received)
}

/// `ID (KIND #SEQ of PARCEL-OR-PAYMENT): stored|duplicate`, one line each, or JSON.
fn print_received(ctx: &Context, received: &[Received<'_>]) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(&received);
    }
    for r in received {
        outln!(
            "{} ({} #{} of {}): {}",
            r.external_id,
            r.kind,
            r.sequence,
            r.tracking_number.or(r.reference).unwrap_or_default(),
            r.result
        )?;
    }
    Ok(())
}

/// A report's figures as a JSON object, in the order people read them.
fn object(fields: &[(&str, usize)]) -> Value {
    let object: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(name, n)| ((*name).to_owned(), json!(n)))
        .collect();
    Value::Object(object)
}

fn carrier_fields(report: &InboxReport) -> [(&'static str, usize); 5] {
    [
        ("applied", report.applied),
        ("stale", report.stale),
        ("refused", report.refused),
        ("waiting", report.waiting),
        ("orders_followed", report.orders_followed),
    ]
}

fn processor_fields(report: &ProcessorInbox) -> [(&'static str, usize); 6] {
    [
        ("applied", report.applied),
        ("in_step", report.in_step),
        ("reconciled", report.reconciled),
        ("stale", report.stale),
        ("refused", report.refused),
        ("waiting", report.waiting),
    ]
}

/// Both sources, the carrier's first: a parcel's news may move its order on before the
/// processor's news about the order's money is compared with the books.
pub async fn process(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let carrier = engine.process_carrier_inbox().await?;
    let processor = engine.process_processor_inbox().await?;
    if ctx.json {
        return print_json(&json!({
            "carrier": object(&carrier_fields(&carrier)),
            "processor": object(&processor_fields(&processor)),
        }));
    }
    outln!(
        "carrier inbox: {} applied, {} stale, {} refused, {} waiting for an earlier event; \
         {} order(s) moved on",
        carrier.applied,
        carrier.stale,
        carrier.refused,
        carrier.waiting,
        carrier.orders_followed
    )?;
    outln!(
        "processor inbox: {} applied, {} in step, {} reconciled, {} stale, {} refused, \
         {} waiting for an unknown payment",
        processor.applied,
        processor.in_step,
        processor.reconciled,
        processor.stale,
        processor.refused,
        processor.waiting
    )?;
    Ok(())
}

pub async fn list(ctx: &Context, args: &InboxListArgs) -> anyhow::Result<()> {
    let (source, name) = match args.source {
        InboxSource::Carrier => (CARRIER, "carrier"),
        InboxSource::Processor => (PROCESSOR, "processor"),
    };
    let engine = open(ctx).await?;
    let messages: Vec<InboxMessage> = engine
        .store()
        .inbox(source)
        .await?
        .into_iter()
        .filter(|m| !args.pending || m.processed_at.is_none())
        .collect();
    if ctx.json {
        return print_json(&messages);
    }
    if messages.is_empty() {
        let which = if args.pending { "pending " } else { "" };
        outln!("no {which}{name} messages")?;
        return Ok(());
    }
    let table = match args.source {
        InboxSource::Carrier => carrier_table(&messages),
        InboxSource::Processor => processor_table(&messages),
    };
    out!("{table}")?;
    Ok(())
}

/// A field of a message's payload as a table cell.
fn field(message: &InboxMessage, name: &str) -> String {
    match message.payload.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn outcome(message: &InboxMessage) -> String {
    message
        .outcome
        .clone()
        .unwrap_or_else(|| "pending".to_owned())
}

fn carrier_table(messages: &[InboxMessage]) -> Table {
    let mut table = Table::new(&[
        "RECEIVED",
        "EXTERNAL ID",
        "TRACKING",
        "EVENT",
        "SEQ",
        "OUTCOME",
    ])
    .right(&[4]);
    for m in messages {
        table.row(vec![
            time(m.received_at),
            m.external_id.clone(),
            field(m, "tracking_number"),
            field(m, "kind"),
            field(m, "sequence"),
            outcome(m),
        ]);
    }
    table
}

fn processor_table(messages: &[InboxMessage]) -> Table {
    let mut table = Table::new(&[
        "RECEIVED",
        "EXTERNAL ID",
        "REFERENCE",
        "EVENT",
        "SEQ",
        "AMOUNT",
        "OUTCOME",
    ])
    .right(&[4, 5]);
    for m in messages {
        let amount = m.payload.get("amount_cents").and_then(Value::as_i64);
        table.row(vec![
            time(m.received_at),
            m.external_id.clone(),
            field(m, "reference"),
            field(m, "kind"),
            field(m, "sequence"),
            amount.map_or_else(String::new, |cents| money(cents, "")),
            outcome(m),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use order_core::carrier::CarrierEvent;
    use order_core::payment::{ProcessorEvent, ProcessorEventKind};

    use super::parse_events;

    const PICK_UP: &str = r#"{"external_id": "e1", "tracking_number": "T-1", "kind": "pick_up",
        "occurred_at": "2026-03-04T09:00:00Z", "sequence": 1}"#;

    const CAPTURED: &str = r#"{"external_id": "evt_1", "reference": "pay_1", "kind": "captured",
        "amount_cents": 1500, "occurred_at": "2026-03-04T09:00:00Z", "sequence": 2}"#;

    fn carrier(text: &str) -> Result<Vec<CarrierEvent>, String> {
        parse_events(text, "`f`").map_err(|e| e.0)
    }

    fn processor(text: &str) -> Result<Vec<ProcessorEvent>, String> {
        parse_events(text, "`f`").map_err(|e| e.0)
    }

    #[test]
    fn a_webhook_is_one_event_or_an_array_of_them() {
        assert_eq!(carrier(PICK_UP).expect("one").len(), 1);
        let two = format!("[{PICK_UP}, {PICK_UP}]");
        assert_eq!(carrier(&two).expect("two").len(), 2);
        let events = processor(&format!("[{CAPTURED}]")).expect("one");
        assert_eq!(events[0].kind, ProcessorEventKind::Captured);
        assert_eq!(events[0].refund_reference, None);
    }

    #[test]
    fn bad_webhooks_are_one_line_usage_errors() {
        let refused = |text: &str| carrier(text).expect_err("refused");
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

    #[test]
    fn bad_processor_webhooks_are_one_line_usage_errors() {
        let refused = |text: &str| processor(text).expect_err("refused");
        assert_eq!(refused("[]"), "`f` holds no processor events");
        let kind = refused(&CAPTURED.replace("captured", "teleported"));
        assert!(
            kind.starts_with("`f` is not a processor event: unknown variant `teleported`"),
            "{kind}"
        );
        // A carrier's event is not the processor's.
        let other = refused(PICK_UP);
        assert!(
            other.starts_with("`f` is not a processor event: unknown variant `pick_up`"),
            "{other}"
        );
        let zero = refused(&CAPTURED.replace("\"sequence\": 2", "\"sequence\": 0"));
        assert_eq!(zero, "`f`: the processor's sequence numbers start at 1");
        let empty = refused(&CAPTURED.replace("\"pay_1\"", "\"\""));
        assert_eq!(empty, "`f` needs a non-empty external_id and reference");
        let negative = refused(&CAPTURED.replace("1500", "-1"));
        assert_eq!(negative, "`f`: amount_cents must not be negative, got -1");
        for message in [kind, other] {
            assert_eq!(message.lines().count(), 1, "{message}");
        }
    }
}
