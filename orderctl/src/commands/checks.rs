//! `verify`, `reconcile` and `graph`.

use serde_json::json;

use super::{open, print_json};
use crate::Context;
use crate::cli::{GraphArgs, GraphFormat};
use crate::output::{out, outln};
use crate::table::Table;

/// Every invariant of the stored data; the findings on stdout, and exit 1 when any.
pub async fn verify(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let findings = engine.store().verify().await?;
    if ctx.json {
        print_json(&json!({ "ok": findings.is_empty(), "findings": findings }))?;
    } else if findings.is_empty() {
        outln!("every invariant holds")?;
    } else {
        let mut table = Table::new(&["CHECK", "DETAIL"]);
        for finding in &findings {
            table.row(vec![finding.check.clone(), finding.detail.clone()]);
        }
        out!("{table}")?;
    }
    if !findings.is_empty() {
        let first = &findings[0];
        anyhow::bail!(
            "{} invariant finding(s), the first: {first}",
            findings.len()
        );
    }
    Ok(())
}

/// Settles what a crash left in doubt between the payment rows and the processor's
/// books, and prints what it did.
pub async fn reconcile(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let done = engine.reconcile_payments().await?;
    if ctx.json {
        return print_json(&done);
    }
    outln!(
        "reconcile: {} payment(s) compared with the processor's books",
        done.checked
    )?;
    outln!(
        "authorizations: {} settled, {} voided; captures: {} completed, {} refunded",
        done.authorizations_settled,
        done.authorizations_voided,
        done.captures_completed,
        done.captures_refunded
    )?;
    if done.unknown > 0 {
        outln!(
            "{} payment(s) unknown to this processor (another journal's?) left as they are",
            done.unknown
        )?;
    }
    if done.unresolved > 0 {
        outln!(
            "{} payment(s) hold money at the processor that their machine cannot record: \
             see the log, and settle them by hand",
            done.unresolved
        )?;
    }
    Ok(())
}

/// The graph compiled into the binary: the same text as `fsm graph machines/order.fsm`.
pub fn graph(ctx: &Context, args: &GraphArgs) -> anyhow::Result<()> {
    let (name, text) = match args.format {
        GraphFormat::Dot => ("dot", order_core::order::DOT),
        GraphFormat::Mermaid => ("mermaid", order_core::order::MERMAID),
    };
    if ctx.json {
        return print_json(&json!({ "format": name, "graph": text }));
    }
    out!("{text}")?;
    if !text.ends_with('\n') {
        outln!()?;
    }
    Ok(())
}
