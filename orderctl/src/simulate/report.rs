//! The end of a simulation: orders per state, throughput, refusals, the carrier's and
//! the processor's webhooks, crashes and reconciliation, the money checks, and
//! `verify`.

use std::collections::BTreeMap;
use std::time::Duration;

use order_core::{Finding, OrderQuery, Store};
use serde::Serialize;

use super::payments::{Money, PaymentsTally};
use super::{CarrierTally, SimulateArgs, Tally};
use crate::output::{StdoutError, outln};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub orders: usize,
    /// Orders split in two: the new orders are counted among the states besides the
    /// `orders` customers placed.
    pub splits: u64,
    pub workers: usize,
    pub states: BTreeMap<String, i64>,
    pub payment: BTreeMap<String, i64>,
    pub fulfillment: BTreeMap<String, i64>,
    pub transitions: u64,
    pub seconds: f64,
    pub transitions_per_second: f64,
    pub simulated_days: i64,
    pub refusals: BTreeMap<String, u64>,
    pub bulk_cleanup: BTreeMap<String, usize>,
    /// The carrier's webhooks and what the inbox made of them.
    pub carrier: CarrierTally,
    /// Parcels per state at the end.
    pub parcels: BTreeMap<String, u64>,
    /// Orders left with nothing more anyone can do, by why (not failures of the run:
    /// the machines have no way on for them).
    pub stranded: BTreeMap<String, u64>,
    /// The processor's webhooks and what the inbox made of them, its own doings, the
    /// workers that died mid-payment and what reconciliation did.
    pub payments: PaymentsTally,
    /// The processor's totals against the books, and the money invariants that do not
    /// hold (none in a clean run).
    pub money: Money,
    pub unexpected: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Summary {
    pub async fn collect(
        store: &dyn Store,
        tally: &Tally,
        elapsed: Duration,
        findings: Vec<Finding>,
        args: &SimulateArgs,
    ) -> anyhow::Result<Summary> {
        let states = store.count_by_state(&OrderQuery::new()).await?;
        let (payment, fulfillment) = store.count_by_status().await?;
        let seconds = elapsed.as_secs_f64();
        Ok(Summary {
            seed: args.seed,
            orders: args.orders,
            splits: tally.splits,
            workers: args.workers,
            states: states
                .into_iter()
                .map(|(s, n)| (s.to_string(), n))
                .collect(),
            payment: payment.into_iter().collect(),
            fulfillment: fulfillment.into_iter().collect(),
            transitions: tally.fired,
            seconds,
            transitions_per_second: if seconds > 0.0 {
                tally.fired as f64 / seconds
            } else {
                0.0
            },
            simulated_days: tally.simulated_days,
            refusals: tally.refused.clone(),
            bulk_cleanup: tally.bulk.clone(),
            carrier: tally.carrier.clone(),
            parcels: tally.parcels.clone(),
            stranded: tally.stranded.clone(),
            payments: tally.payments.clone(),
            money: tally.money.clone(),
            unexpected: tally.unexpected.clone(),
            findings,
        })
    }

    /// Clean when `verify` found nothing, nothing unexpected failed and the money adds
    /// up.
    pub fn clean(&self) -> bool {
        self.findings.is_empty() && self.unexpected.is_empty() && self.money.problems.is_empty()
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            outln!("{}", serde_json::to_string_pretty(self)?)?;
            return Ok(());
        }
        outln!(
            "simulated {} orders with {} workers (seed {}) over {} days of shop time",
            self.orders,
            self.workers,
            self.seed,
            self.simulated_days
        )?;
        outln!()?;
        section(
            "orders",
            [
                ("placed by customers", self.orders as u64),
                ("split off another order", self.splits),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
        )?;
        section(
            "orders per state",
            self.states.iter().map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        section(
            "payment status",
            self.payment
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        section(
            "fulfillment status",
            self.fulfillment
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        section(
            "refusals by rule",
            self.refusals
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        section(
            "bulk clean-up",
            self.bulk_cleanup
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        let c = &self.carrier;
        section(
            "carrier webhooks",
            [
                ("received", c.events_received),
                ("duplicates dropped", c.duplicates_dropped),
                ("applied", c.applied),
                ("stale", c.stale),
                ("refused", c.refused),
                ("still waiting", c.waiting),
                ("orders moved on", c.orders_followed),
                ("reported lost by support", c.reported_lost_by_support),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
        )?;
        section(
            "parcels",
            self.parcels
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        let p = &self.payments;
        let r = &p.reconcile;
        let crashes = |point: &str| p.crashes.get(point).copied().unwrap_or(0);
        section(
            "payments",
            [
                ("webhooks received", p.webhooks_received),
                ("duplicates dropped", p.duplicates_dropped),
                ("applied", p.applied),
                ("in step", p.in_step),
                ("reconciled", p.reconciled),
                ("stale", p.stale),
                ("refused", p.refused),
                ("never handled", p.pending),
                ("authorizations expired", p.authorizations_expired),
                ("chargebacks", p.chargebacks),
                ("refunds reversed", p.refunds_reversed),
                ("goodwill refunds", p.goodwill_refunds),
                ("declined payments retried", p.retries),
                ("crashes after authorizing", crashes("authorized")),
                ("crashes after capturing", crashes("captured")),
                ("reconcile runs", r.runs),
                ("payments checked", r.checked),
                ("authorizations settled", r.authorizations_settled),
                ("authorizations voided", r.authorizations_voided),
                ("captures completed", r.captures_completed),
                ("captures refunded", r.captures_refunded),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
        )?;
        let m = &self.money;
        section(
            "money",
            [
                ("captured (processor)", m.processor_captured_cents),
                ("captured (books)", m.books_captured_cents),
                ("refunded (processor)", m.processor_refunded_cents),
                ("refunded (books)", m.books_refunded_cents),
            ]
            .into_iter()
            .map(|(k, v)| (k, crate::table::money(v, ""))),
        )?;
        section(
            "orders stranded",
            self.stranded
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string())),
        )?;
        outln!(
            "{} transitions in {:.2} s: {:.0} transitions/s",
            self.transitions,
            self.seconds,
            self.transitions_per_second
        )?;
        for problem in &self.unexpected {
            outln!("unexpected: {problem}")?;
        }
        if self.money.problems.is_empty() {
            outln!("money: the books and the processor agree")?;
        } else {
            outln!("money: {} problem(s)", self.money.problems.len())?;
            for problem in &self.money.problems {
                outln!("  {problem}")?;
            }
        }
        if self.findings.is_empty() {
            outln!("verify: clean")?;
        } else {
            outln!("verify: {} finding(s)", self.findings.len())?;
            for finding in &self.findings {
                outln!("  {finding}")?;
            }
        }
        Ok(())
    }
}

/// A titled two-column table.
fn section<'a>(
    title: &str,
    rows: impl Iterator<Item = (&'a str, String)>,
) -> Result<(), StdoutError> {
    let rows: Vec<(&str, String)> = rows.collect();
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
        .max(title.len());
    outln!("{title}")?;
    for (key, value) in rows {
        outln!("  {key:<width$}  {value:>6}")?;
    }
    outln!()
}
