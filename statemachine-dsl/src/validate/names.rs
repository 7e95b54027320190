//! Checks of names: every reference resolves, no list repeats itself, every name can
//! become Rust, and every declaration is used.

use std::collections::{HashMap, HashSet};

use super::{Decls, Report, keyword, transitions};
use crate::ast::{self, Clause, Ident, Item, Span};
use crate::diagnostic::{Code, Diagnostic, Label};

pub(super) fn check(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    let suggested = references(machine, decls, report);
    repeats(machine, report);
    rust_names(machine, report);
    unused(machine, decls, &suggested, report);
}

/// The uses of one undeclared name. A typo repeated in five transitions is one mistake,
/// so it is reported once, at its first use, with the other uses pointed at.
struct Unknown<'a> {
    code: Code,
    what: &'static str,
    name: &'a str,
    uses: Vec<Span>,
}

/// Checks that every name used is declared. Returns the declared names suggested as
/// the likely meaning of an undeclared one: they are not reported as unused, since the
/// typo is the problem and fixing it uses them.
fn references<'a>(
    machine: &'a ast::MachineDecl,
    decls: &Decls<'a>,
    report: &mut Report,
) -> Vec<&'a str> {
    let mut unknown: Vec<Unknown<'a>> = Vec::new();
    let mut note = |code: Code, what: &'static str, name: &'a Ident| match unknown
        .iter_mut()
        .find(|u| u.code == code && u.name == name.name)
    {
        Some(u) => u.uses.push(name.span),
        None => unknown.push(Unknown {
            code,
            what,
            name: &name.name,
            uses: vec![name.span],
        }),
    };
    let mut reason_flags: Vec<(&Ident, Span)> = Vec::new();
    for item in &machine.items {
        let states: Vec<&Ident> = match item {
            Item::Transition(t) => t.from.iter().chain(std::iter::once(&t.to)).collect(),
            Item::Allow(a) => a.states.iter().collect(),
            Item::Hook(h) => vec![&h.state],
            Item::State(_) | Item::Actor(_) | Item::Reasons(_) | Item::Calendar(_) => Vec::new(),
        };
        for state in states {
            if decls.state(&state.name).is_none() {
                note(Code::UndeclaredState, "state", state);
            }
        }
        let Item::Transition(t) = item else { continue };
        for clause in &t.clauses {
            match clause {
                Clause::By(by) => {
                    for actor in &by.actors {
                        if !decls.actors.contains_key(actor.name.name.as_str()) {
                            note(Code::UndeclaredActor, "actor", &actor.name);
                        }
                        if let Some(reason) = actor.reason {
                            reason_flags.push((&actor.name, reason));
                        }
                    }
                }
                Clause::Within(w) => {
                    if !decls.calendars.contains_key(w.calendar.name.as_str()) {
                        note(Code::UndeclaredCalendar, "calendar", &w.calendar);
                    }
                }
                Clause::When(_) | Clause::Do(_) | Clause::Emit(_) => {}
            }
        }
    }
    let calendars: Vec<&str> = machine
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Calendar(c) => Some(c.name.name.as_str()),
            _ => None,
        })
        .collect();
    let mut suggested = Vec::new();
    for u in unknown {
        let candidates: Vec<&'a str> = match u.code {
            Code::UndeclaredState => decls.states.iter().map(|s| s.name.name.as_str()).collect(),
            Code::UndeclaredActor => decls
                .actor_order
                .iter()
                .map(|a| a.name.name.as_str())
                .collect(),
            _ => calendars.clone(),
        };
        let help = match similar(u.name, &candidates) {
            Some(close) => {
                suggested.push(close);
                format!("did you mean `{close}`?")
            }
            None => match u.code {
                Code::UndeclaredState => format!("declare it with `state {}`", u.name),
                Code::UndeclaredActor => format!(
                    "declare it with `actor {}` (add `owner` or `staff` if it is one)",
                    u.name
                ),
                _ => format!(
                    "declare it with `calendar {} {{ timezone \"...\" mon-fri 09:00-17:00 }}`",
                    u.name
                ),
            },
        };
        let mut d = Diagnostic::new(
            u.code,
            format!("{} `{}` is not declared", u.what, u.name),
            Label::new(u.uses[0], format!("unknown {}", u.what)),
        )
        .with_help(help);
        for again in &u.uses[1..] {
            d = d.with_secondary(Label::new(*again, "also used here"));
        }
        report.push(d);
    }
    missing_reasons(decls, &reason_flags, report);
    suggested
}

/// `(reason)` without any `reasons` declaration: one missing declaration, reported once.
fn missing_reasons(decls: &Decls<'_>, flags: &[(&Ident, Span)], report: &mut Report) {
    let Some(((actor, first), rest)) = flags.split_first() else {
        return;
    };
    if !decls.reasons.is_empty() {
        return;
    }
    let message = if rest.is_empty() {
        format!(
            "`{}` must give a reason, but the machine declares no reasons",
            actor.name
        )
    } else {
        format!(
            "actors must give a reason in {} places, but the machine declares no reasons",
            flags.len()
        )
    };
    let mut d = Diagnostic::new(
        Code::UndeclaredReason,
        message,
        Label::new(*first, "requires a reason code"),
    )
    .with_help("declare the reason codes with `reasons customer_request, other`");
    for (_, again) in rest {
        d = d.with_secondary(Label::new(*again, "also requires one"));
    }
    report.push(d);
}

/// The declared name closest to a misspelled one, if it is close enough to be meant:
/// one edit for names of up to three letters, two for longer ones (`payed`, `paid`).
fn similar<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The Levenshtein distance: the fewest insertions, deletions and substitutions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
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
                let owner = format!("`{} {}`", keyword(t), t.event.name);
                repeated_in(report, &format!("the source states of {owner}"), &t.from);
                clause_lists(report, &owner, &t.clauses);
            }
            Item::Allow(a) => {
                let owner = format!("`allow {}`", a.operation.name);
                repeated_in(report, &format!("the states of {owner}"), &a.states);
                match operations.get(a.operation.name.as_str()) {
                    // The fix is to merge the two lists, not to drop one of them.
                    Some(first) => report.duplicate_with(
                        "operation",
                        first,
                        &a.operation,
                        format!(
                            "list every state where `{}` is allowed in one `allow {} in ...`",
                            a.operation.name, a.operation.name
                        ),
                    ),
                    None => {
                        operations.insert(&a.operation.name, &a.operation);
                    }
                }
            }
            Item::Hook(h) => {
                let kind = match h.kind {
                    ast::HookKind::Enter => "enter",
                    ast::HookKind::Exit => "exit",
                };
                let owner = format!("`{kind} {}`", h.state.name);
                clause_lists(report, &owner, &h.clauses);
                match hook_states.get(&(h.kind, h.state.name.as_str())) {
                    // The state is named twice, but it is the hook that is repeated.
                    Some(first) => report.push(
                        Diagnostic::new(
                            Code::Duplicate,
                            format!("state `{}` has two `{kind}` hooks", h.state.name),
                            Label::new(h.state.span, "second hook"),
                        )
                        .with_secondary(Label::new(first.span, "first hook"))
                        .with_help(format!(
                            "merge them into one `{kind} {} {{ ... }}`; a hook may hold several `do` and `emit` clauses",
                            h.state.name
                        )),
                    ),
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
                    let list = format!("the closed dates of calendar `{}`", c.name.name);
                    repeated_in(report, &list, &dates);
                }
            }
            Item::Actor(_) | Item::Reasons(_) => {}
        }
    }
}

/// Repeats inside the lists of one declaration's clauses, taken together: two `do`
/// clauses that both run `x` run it twice, which is never what was meant.
fn clause_lists(report: &mut Report, owner: &str, clauses: &[Clause]) {
    let by = clauses.iter().filter_map(|c| match c {
        Clause::By(b) => Some(&b.actors),
        _ => None,
    });
    let list = format!("the actors of {owner}");
    repeated_in(report, &list, by.flatten().map(|a| &a.name));
    let actions = clauses.iter().filter_map(|c| match c {
        Clause::Do(d) => Some(&d.actions),
        _ => None,
    });
    let list = format!("the actions of {owner}");
    repeated_in(report, &list, actions.flatten().map(|a| &a.name));
    let emits = clauses.iter().filter_map(|c| match c {
        Clause::Emit(e) => Some(&e.notifications),
        _ => None,
    });
    let list = format!("the notifications of {owner}");
    repeated_in(report, &list, emits.flatten());
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
pub(crate) const RESERVED: &[&str] = &["self", "super", "crate"];

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
        // Each distinct name is checked once: events, guards and actions repeat across
        // a file, and their repeats can neither be reserved nor collide anew.
        let mut seen: HashSet<&str> = HashSet::new();
        for name in names {
            if !seen.insert(&name.name) {
                continue;
            }
            if RESERVED.contains(&name.name.as_str()) {
                report.push(
                    Diagnostic::new(
                        Code::RustName,
                        format!("`{}` cannot be used as {} name", name.name, article(kind)),
                        Label::new(name.span, "reserved in Rust"),
                    )
                    .with_help(
                        "`self`, `super` and `crate` cannot name anything; choose another name",
                    ),
                );
                continue;
            }
            let variant = camel_case(&name.name);
            match variants.get(&variant) {
                Some(first) => report.push(
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
                None => {
                    variants.insert(variant, name);
                }
            }
        }
    }
}

/// "an action", "a state".
fn article(kind: &str) -> String {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
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

/// Warnings for declarations nothing uses. A declaration suggested as the meaning of
/// an undeclared name is left out: the typo is already an error, and fixing it uses it.
fn unused(machine: &ast::MachineDecl, decls: &Decls<'_>, suggested: &[&str], report: &mut Report) {
    let by_clauses: Vec<&ast::ByClause> = transitions(machine)
        .flat_map(|t| &t.clauses)
        .filter_map(|c| match c {
            Clause::By(b) => Some(b),
            _ => None,
        })
        .collect();
    let named: HashSet<&str> = by_clauses
        .iter()
        .flat_map(|b| &b.actors)
        .map(|a| a.name.name.as_str())
        .collect();
    for actor in &decls.actor_order {
        let name = actor.name.name.as_str();
        if !named.contains(name) && !suggested.contains(&name) {
            report.push(
                Diagnostic::new(
                    Code::UnusedActor,
                    format!("actor `{name}` is never named in a `by` clause"),
                    Label::new(actor.name.span, "declared here"),
                )
                .with_help("name it in a `by` clause, or remove the declaration"),
            );
        }
    }
    let windows: HashSet<&str> = transitions(machine)
        .flat_map(|t| &t.clauses)
        .filter_map(|c| match c {
            Clause::Within(w) => Some(w.calendar.name.as_str()),
            _ => None,
        })
        .collect();
    for item in &machine.items {
        if let Item::Calendar(c) = item {
            let name = c.name.name.as_str();
            if !windows.contains(name) && !suggested.contains(&name) {
                report.push(
                    Diagnostic::new(
                        Code::UnusedCalendar,
                        format!("calendar `{name}` is never used"),
                        Label::new(c.name.span, "declared here"),
                    )
                    .with_help(format!(
                        "add `within {name}` to a transition, or remove the calendar"
                    )),
                );
            }
        }
    }
    let needs_reason = by_clauses
        .iter()
        .flat_map(|b| &b.actors)
        .any(|a| a.reason.is_some());
    let mut reasons = machine.items.iter().filter_map(|item| match item {
        Item::Reasons(r) => Some(r),
        _ => None,
    });
    // The reason codes are one set, however many lines declare it: one warning.
    if let (false, Some(first)) = (needs_reason, reasons.next()) {
        let mut d = Diagnostic::new(
            Code::UnusedReasons,
            "reasons are declared but no actor is required to give one",
            Label::new(first.span, "declared here"),
        )
        .with_help("write `by actor(reason)` where a reason is required, or remove the reasons");
        for again in reasons {
            d = d.with_secondary(Label::new(again.span, "also declared here"));
        }
        report.push(d);
    }
}
