//! Checks of names: every reference resolves, no list repeats itself, every name can
//! become Rust, and every declaration is used.

use std::collections::HashMap;

use super::{Decls, Report, transitions};
use crate::ast::{self, Clause, Ident, Item};
use crate::diagnostic::{Code, Diagnostic, Label};

pub(super) fn check(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    references(machine, decls, report);
    repeats(machine, report);
    rust_names(machine, report);
    unused(machine, decls, report);
}

fn undeclared(report: &mut Report, code: Code, what: &str, name: &Ident, help: String) {
    report.push(
        Diagnostic::new(
            code,
            format!("{what} `{}` is not declared", name.name),
            Label::new(name.span, format!("unknown {what}")),
        )
        .with_help(help),
    );
}

fn check_state(decls: &Decls<'_>, report: &mut Report, name: &Ident) {
    if decls.state(&name.name).is_none() {
        let help = format!("declare it with `state {}`, or fix the spelling", name.name);
        undeclared(report, Code::UndeclaredState, "state", name, help);
    }
}

fn references(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    for item in &machine.items {
        match item {
            Item::Transition(t) => {
                t.from
                    .iter()
                    .chain(std::iter::once(&t.to))
                    .for_each(|s| check_state(decls, report, s));
                for clause in &t.clauses {
                    match clause {
                        Clause::By(by) => actor_refs(decls, report, by),
                        Clause::Within(w) => {
                            if !decls.calendars.contains_key(w.calendar.name.as_str()) {
                                let help = format!(
                                    "declare it with `calendar {} {{ timezone \"...\" mon-fri 09:00-17:00 }}`",
                                    w.calendar.name
                                );
                                undeclared(
                                    report,
                                    Code::UndeclaredCalendar,
                                    "calendar",
                                    &w.calendar,
                                    help,
                                );
                            }
                        }
                        Clause::When(_) | Clause::Do(_) | Clause::Emit(_) => {}
                    }
                }
            }
            Item::Allow(a) => a.states.iter().for_each(|s| check_state(decls, report, s)),
            Item::Hook(h) => check_state(decls, report, &h.state),
            Item::State(_) | Item::Actor(_) | Item::Reasons(_) | Item::Calendar(_) => {}
        }
    }
}

fn actor_refs(decls: &Decls<'_>, report: &mut Report, by: &ast::ByClause) {
    for actor in &by.actors {
        if !decls.actors.contains_key(actor.name.name.as_str()) {
            let help = format!(
                "declare it with `actor {}` (add `owner` or `staff` if it is one)",
                actor.name.name
            );
            undeclared(report, Code::UndeclaredActor, "actor", &actor.name, help);
        }
        if let Some(reason) = actor.reason {
            if decls.reasons.is_empty() {
                report.push(
                    Diagnostic::new(
                        Code::UndeclaredReason,
                        format!(
                            "`{}` must give a reason, but the machine declares no reasons",
                            actor.name.name
                        ),
                        Label::new(reason, "requires a reason code"),
                    )
                    .with_help("declare the reason codes with `reasons customer_request, other`"),
                );
            }
        }
    }
}

/// Reports a name that appears twice in one list (`by a, a`, `in s, s`, ...).
fn repeated_in<'a>(report: &mut Report, list: &str, names: impl IntoIterator<Item = &'a Ident>) {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for name in names {
        if let Some(first) = seen.get(name.name.as_str()) {
            report.push(
                Diagnostic::new(
                    Code::RepeatedEntry,
                    format!("`{}` appears twice in {list}", name.name),
                    Label::new(name.span, "repeated here"),
                )
                .with_secondary(Label::new(first.span, "first listed here"))
                .with_help(format!("remove the second `{}`", name.name)),
            );
        } else {
            seen.insert(&name.name, name);
        }
    }
}

fn repeats(machine: &ast::MachineDecl, report: &mut Report) {
    let mut operations: HashMap<&str, &Ident> = HashMap::new();
    let mut hook_states: HashMap<(ast::HookKind, &str), &Ident> = HashMap::new();
    for item in &machine.items {
        match item {
            Item::State(s) => {
                let mut seen = Vec::new();
                for (flag, span) in &s.flags {
                    if seen.contains(flag) {
                        report.push(
                            Diagnostic::new(
                                Code::RepeatedEntry,
                                format!("state `{}` repeats a flag", s.name.name),
                                Label::new(*span, "repeated here"),
                            )
                            .with_help("write each of `initial` and `terminal` at most once"),
                        );
                    }
                    seen.push(*flag);
                }
            }
            Item::Transition(t) => {
                repeated_in(report, "the source states", &t.from);
                clause_lists(report, &t.clauses);
            }
            Item::Allow(a) => {
                repeated_in(report, "the states of an `allow`", &a.states);
                match operations.get(a.operation.name.as_str()) {
                    Some(first) => report.duplicate("operation", first, &a.operation),
                    None => {
                        operations.insert(&a.operation.name, &a.operation);
                    }
                }
            }
            Item::Hook(h) => {
                clause_lists(report, &h.clauses);
                let kind = match h.kind {
                    ast::HookKind::Enter => "enter",
                    ast::HookKind::Exit => "exit",
                };
                match hook_states.get(&(h.kind, h.state.name.as_str())) {
                    Some(first) => report.duplicate(&format!("{kind} hook of"), first, &h.state),
                    None => {
                        hook_states.insert((h.kind, &h.state.name), &h.state);
                    }
                }
            }
            Item::Calendar(c) => {
                if let Some(closed) = &c.closed {
                    let dates: Vec<Ident> = closed
                        .dates
                        .iter()
                        .map(|d| Ident {
                            name: d.text.clone(),
                            span: d.span,
                        })
                        .collect();
                    repeated_in(report, "the closed dates", &dates);
                }
            }
            Item::Actor(_) | Item::Reasons(_) => {}
        }
    }
}

/// Repeats inside the lists of one declaration's clauses, taken together: two `do`
/// clauses that both run `x` run it twice, which is never what was meant.
fn clause_lists(report: &mut Report, clauses: &[Clause]) {
    let by = clauses.iter().filter_map(|c| match c {
        Clause::By(b) => Some(&b.actors),
        _ => None,
    });
    repeated_in(report, "the actors", by.flatten().map(|a| &a.name));
    let actions = clauses.iter().filter_map(|c| match c {
        Clause::Do(d) => Some(&d.actions),
        _ => None,
    });
    repeated_in(report, "the actions", actions.flatten().map(|a| &a.name));
    let emits = clauses.iter().filter_map(|c| match c {
        Clause::Emit(e) => Some(&e.notifications),
        _ => None,
    });
    repeated_in(report, "the notifications", emits.flatten());
}

/// The CamelCase variant a name becomes in generated code: `return_to_sender` is
/// `ReturnToSender`.
pub(crate) fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Names that cannot be Rust identifiers, not even raw ones.
const RESERVED: &[&str] = &["self", "super", "crate"];

fn rust_names<'a>(machine: &'a ast::MachineDecl, report: &mut Report) {
    let mut kinds: Vec<(&str, Vec<&'a Ident>)> = vec![
        ("state", Vec::new()),
        ("event", Vec::new()),
        ("actor", Vec::new()),
        ("reason", Vec::new()),
        ("calendar", Vec::new()),
        ("guard", Vec::new()),
        ("action", Vec::new()),
        ("notification", Vec::new()),
        ("operation", Vec::new()),
    ];
    let mut add = |kind: usize, name: &'a Ident| kinds[kind].1.push(name);
    for item in &machine.items {
        match item {
            Item::State(s) => add(0, &s.name),
            Item::Actor(a) => add(2, &a.name),
            Item::Reasons(r) => r.codes.iter().for_each(|c| add(3, c)),
            Item::Calendar(c) => add(4, &c.name),
            Item::Transition(t) => {
                add(1, &t.event);
                clause_names(&t.clauses, &mut add);
            }
            Item::Allow(a) => add(8, &a.operation),
            Item::Hook(h) => clause_names(&h.clauses, &mut add),
        }
    }
    for (kind, names) in &kinds {
        let mut variants: HashMap<String, &Ident> = HashMap::new();
        for name in names {
            if RESERVED.contains(&name.name.as_str()) {
                report.push(
                    Diagnostic::new(
                        Code::RustName,
                        format!("`{}` cannot be used as a {kind} name", name.name),
                        Label::new(name.span, "reserved in Rust"),
                    )
                    .with_help("`self`, `super` and `crate` cannot name anything; choose another name"),
                );
                continue;
            }
            let variant = camel_case(&name.name);
            match variants.get(&variant) {
                Some(first) if first.name != name.name => report.push(
                    Diagnostic::new(
                        Code::RustName,
                        format!(
                            "{kind}s `{}` and `{}` both become `{variant}` in Rust",
                            first.name, name.name
                        ),
                        Label::new(name.span, format!("becomes `{variant}`")),
                    )
                    .with_secondary(Label::new(first.span, format!("also becomes `{variant}`")))
                    .with_help("rename one of them so they differ by more than underscores"),
                ),
                Some(_) => {}
                None => {
                    variants.insert(variant, name);
                }
            }
        }
    }
}

fn clause_names<'a>(clauses: &'a [Clause], add: &mut impl FnMut(usize, &'a Ident)) {
    for clause in clauses {
        match clause {
            Clause::When(w) => w.guard.names().into_iter().for_each(|n| add(5, n)),
            Clause::Do(d) => {
                for a in &d.actions {
                    add(6, &a.name);
                    if let Some(u) = &a.undo {
                        add(6, u);
                    }
                }
            }
            Clause::Emit(e) => e.notifications.iter().for_each(|n| add(7, n)),
            Clause::By(_) | Clause::Within(_) => {}
        }
    }
}

fn unused(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    let by_clauses: Vec<&ast::ByClause> = transitions(machine)
        .flat_map(|t| &t.clauses)
        .filter_map(|c| match c {
            Clause::By(b) => Some(b),
            _ => None,
        })
        .collect();
    let actor_refs = || by_clauses.iter().flat_map(|b| &b.actors);
    for actor in &decls.actor_order {
        if !actor_refs().any(|a| a.name.name == actor.name.name) {
            report.push(
                Diagnostic::new(
                    Code::UnusedActor,
                    format!("actor `{}` is never named in a `by` clause", actor.name.name),
                    Label::new(actor.name.span, "declared here"),
                )
                .with_help("name it in a `by` clause, or remove the declaration"),
            );
        }
    }
    let windows: Vec<&str> = transitions(machine)
        .flat_map(|t| &t.clauses)
        .filter_map(|c| match c {
            Clause::Within(w) => Some(w.calendar.name.as_str()),
            _ => None,
        })
        .collect();
    for item in &machine.items {
        if let Item::Calendar(c) = item {
            if !windows.contains(&c.name.name.as_str()) {
                report.push(
                    Diagnostic::new(
                        Code::UnusedCalendar,
                        format!("calendar `{}` is never used", c.name.name),
                        Label::new(c.name.span, "declared here"),
                    )
                    .with_help(format!(
                        "add `within {}` to a transition, or remove the calendar",
                        c.name.name
                    )),
                );
            }
        }
        if let Item::Reasons(r) = item {
            if !actor_refs().any(|a| a.reason.is_some()) {
                report.push(
                    Diagnostic::new(
                        Code::UnusedReasons,
                        "reasons are declared but no actor must give one",
                        Label::new(r.span, "declared here"),
                    )
                    .with_help("write `by actor(reason)` where a reason is required, or remove the reasons"),
                );
            }
        }
    }
}
