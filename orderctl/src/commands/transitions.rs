//! `fire`, `available`, `bulk`: moving orders through the machine.

use order_core::bulk::{BulkOptions, BulkTarget};
use order_core::order::{Event, Machine, Reason, State};
use order_core::{Actor, Command, Engine, OrderId, OrderQuery, Outcome};
use serde::Serialize;
use statemachine::Machine as _;

use super::{open, order, print_json};
use crate::Context;
use crate::args;
use crate::cli::{AvailableArgs, BulkArgs, FireArgs};
use crate::output::{out, outln};
use crate::table::Table;

/// The command of `EVENT --as ACTOR [--reason] [--note] [--key]`.
fn command(
    event: &str,
    actor: &str,
    reason: Option<&str>,
    note: Option<&str>,
    key: Option<&str>,
) -> Result<Command, args::UsageError> {
    let mut command = Command::new(args::event(event)?, args::actor(actor)?);
    if let Some(reason) = reason {
        command = command.reason(args::reason(reason)?);
    }
    if let Some(note) = note {
        command = command.note(note);
    }
    if let Some(key) = key {
        command = command.key(key);
    }
    Ok(command)
}

pub async fn fire(ctx: &Context, args: &FireArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let command = command(
        &args.event,
        &args.actor,
        args.reason.as_deref(),
        args.note.as_deref(),
        args.key.as_deref(),
    )?;
    let actor = command.actor.clone();
    let engine = open(ctx).await?;
    let outcome = engine.fire(id, command).await?;
    if ctx.json {
        return print_json(&outcome);
    }
    outln!("{}", describe(&outcome, &actor))?;
    Ok(())
}

/// `order 1: pending -> confirmed (confirm by system, seq 1)`.
fn describe(outcome: &Outcome, actor: &Actor) -> String {
    let mut line = format!(
        "order {}: {} -> {} ({} by {actor}, seq {})",
        outcome.order, outcome.from, outcome.to, outcome.event, outcome.seq
    );
    if outcome.is_override {
        line.push_str(", an override");
    }
    if outcome.replayed {
        line.push_str("; replayed: this key was fired before");
    }
    line
}

/// One event's answer for `available`.
#[derive(Serialize)]
struct Availability {
    event: Event,
    allowed: bool,
    /// Where the order would go.
    to: Option<State>,
    /// Firing it needs `--reason`.
    needs_reason: bool,
    is_override: bool,
    /// Why it is refused: the engine's words, naming the rule.
    reason: Option<String>,
    /// The pipeline step that refused it.
    step: Option<&'static str>,
}

/// Every event of the machine, asked of the engine's dry run (`Engine::check`:
/// candidates, authorization, window and guards, rolled back).
pub async fn available(ctx: &Context, args: &AvailableArgs) -> anyhow::Result<()> {
    let id = args::order_id(&args.order)?;
    let actor = args::actor(&args.actor)?;
    let engine = open(ctx).await?;
    let current = order(engine.store().as_ref(), id).await?;
    let mut answers = Vec::new();
    for &event in Event::ALL.iter() {
        answers.push(availability(&engine, id, current.state, event, &actor).await);
    }
    if ctx.json {
        return print_json(&answers);
    }
    outln!("order {id} is `{}`; what {actor} may fire:", current.state)?;
    // Events with no transition from this state at all go on one line at the end.
    let (declared, elsewhere): (Vec<&Availability>, Vec<&Availability>) = answers
        .iter()
        .partition(|a| a.allowed || a.step != Some("candidates"));
    let mut table = Table::new(&["EVENT", "ALLOWED", "TO", "WHY NOT"]);
    for a in &declared {
        let allowed = match (a.allowed, a.needs_reason) {
            (true, true) => "yes, with --reason",
            (true, false) => "yes",
            (false, _) => "no",
        };
        table.row(vec![
            a.event.to_string(),
            allowed.to_owned(),
            a.to.map(|s| s.to_string()).unwrap_or_default(),
            a.reason.clone().unwrap_or_default(),
        ]);
    }
    if !declared.is_empty() {
        out!("{table}")?;
    }
    if !elsewhere.is_empty() {
        let names: Vec<String> = elsewhere.iter().map(|a| a.event.to_string()).collect();
        outln!(
            "no transition from `{}`: {}",
            current.state,
            names.join(", ")
        )?;
    }
    Ok(())
}

async fn availability(
    engine: &Engine,
    id: OrderId,
    state: State,
    event: Event,
    actor: &Actor,
) -> Availability {
    let candidates = Machine::candidates(state, event);
    let refused = |reason: String, step: &'static str| Availability {
        event,
        allowed: false,
        to: None,
        needs_reason: false,
        is_override: false,
        reason: Some(reason),
        step: Some(step),
    };
    if candidates.is_empty() {
        // The engine's message would list the available events again on every row.
        return refused(
            format!("no `{event}` transition from `{state}`"),
            "candidates",
        );
    }
    let needs_reason = candidates
        .iter()
        .filter_map(|spec| spec.rule_for(actor.kind))
        .any(|rule| rule.needs_reason);
    let mut command = Command::new(event, actor.clone());
    if needs_reason {
        // The reason step comes before window and guards; any reason code gets past
        // it, and guards do not read it, so the answer is about the rest of the rules.
        if let Some(&placeholder) = Reason::ALL.first() {
            command = command.reason(placeholder);
        }
    }
    match engine.check(id, &command).await {
        Ok(outcome) => Availability {
            event,
            allowed: true,
            to: Some(outcome.to),
            needs_reason,
            is_override: outcome.is_override,
            reason: None,
            step: None,
        },
        Err(error) => refused(error.to_string(), error.step().as_str()),
    }
}

pub async fn bulk(ctx: &Context, args: &BulkArgs) -> anyhow::Result<()> {
    let command = command(
        &args.event,
        &args.actor,
        args.reason.as_deref(),
        args.note.as_deref(),
        args.key.as_deref(),
    )?;
    let target = match (&args.ids, &args.state) {
        (Some(ids), _) => BulkTarget::Ids(args::order_ids(ids)?),
        (None, Some(states)) => {
            BulkTarget::Query(OrderQuery::new().in_states(&args::states(states, "--state")?))
        }
        // clap's argument group requires one of them.
        (None, None) => {
            return Err(args::UsageError("bulk needs --ids or --state".to_owned()).into());
        }
    };
    let options = BulkOptions {
        dry_run: args.dry_run,
        ..BulkOptions::default()
    };
    let engine = open(ctx).await?;
    let report = engine.bulk(&target, &command, options).await?;
    let succeeded = if args.dry_run { "would_fire" } else { "fired" };
    if ctx.json {
        print_json(&report)?;
    } else if report.items.is_empty() {
        outln!("no orders matched")?;
    } else {
        let mut table = Table::new(&["ORDER", "OUTCOME", "DETAIL"]).right(&[0]);
        for item in &report.items {
            let detail = match (&item.transition, &item.error) {
                (Some(t), _) => format!("{} -> {}", t.from, t.to),
                (None, Some(error)) => error.clone(),
                (None, None) => String::new(),
            };
            table.row(vec![item.order.to_string(), item.outcome.clone(), detail]);
        }
        out!("{table}")?;
        outln!("{}", counts(&report.counts))?;
    }
    let refused = report.items.len() - report.count(succeeded);
    if refused > 0 {
        let mut others = report.counts.clone();
        others.remove(succeeded);
        anyhow::bail!(
            "{refused} of {} orders refused `{}` ({})",
            report.items.len(),
            command.event,
            counts(&others)
        );
    }
    Ok(())
}

/// `fired: 2, guard_failed: 1`.
fn counts(counts: &std::collections::BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(outcome, n)| format!("{outcome}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
