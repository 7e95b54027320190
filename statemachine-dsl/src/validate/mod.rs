//! Syntax tree to [`Model`], with every check of the language.
//!
//! The checks run in passes over one symbol table ([`Decls`]): declarations and
//! references, the rules of transitions, calendars, and the shape of the graph. Each
//! pass reports into the same list, so one run reports every problem. A check that
//! would only echo an earlier problem (the graph of a machine with an undeclared state,
//! say) is skipped rather than reported twice.

mod calendar;
mod graph;
mod names;
mod rules;

use std::collections::HashMap;

use crate::ast::{self, Clause, Ident, Item};
use crate::diagnostic::{self, Code, Diagnostic, Label};
use crate::model::{self, Model};

pub(crate) use names::{RESERVED, camel_case};

/// The outcome of checking a file: the model when there is no error, and every
/// diagnostic (errors and warnings) in source order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Validated {
    pub model: Option<Model>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Runs every check on a parsed file.
pub fn validate(file: &ast::File) -> Validated {
    let machine = &file.machine;
    let mut report = Report::default();
    let decls = Decls::collect(machine, &mut report);
    names::check(machine, &decls, &mut report);
    rules::check(machine, &decls, &mut report);
    let calendars = calendar::check(machine, &mut report);
    graph::check(machine, &decls, &mut report);
    let mut diagnostics = report.diagnostics;
    diagnostic::sort(&mut diagnostics);
    let model =
        (!diagnostics.iter().any(Diagnostic::is_error)).then(|| build(machine, &decls, calendars));
    Validated { model, diagnostics }
}

/// The diagnostics found so far.
#[derive(Default)]
struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn duplicate(&mut self, what: &str, first: &Ident, again: &Ident) {
        let help = format!("remove one of the two declarations of `{}`", again.name);
        self.duplicate_with(what, first, again, help);
    }

    /// A duplicate whose fix is not simply to remove one (two `allow` rules for one
    /// operation are merged, say).
    fn duplicate_with(&mut self, what: &str, first: &Ident, again: &Ident, help: String) {
        self.push(
            Diagnostic::new(
                Code::Duplicate,
                format!("{what} `{}` is declared twice", again.name),
                Label::new(again.span, "declared again here"),
            )
            .with_secondary(Label::new(first.span, "first declared here"))
            .with_help(help),
        );
    }
}

/// The symbol table: the first declaration of every name. Later duplicates are
/// reported once, here, and otherwise ignored.
struct Decls<'a> {
    states: Vec<&'a ast::StateDecl>,
    state_index: HashMap<&'a str, &'a ast::StateDecl>,
    actors: HashMap<&'a str, &'a ast::ActorDecl>,
    actor_order: Vec<&'a ast::ActorDecl>,
    reasons: Vec<&'a Ident>,
    calendars: HashMap<&'a str, &'a ast::CalendarDecl>,
    /// Whether a state is declared twice: the graph checks are then skipped, since the
    /// two declarations may disagree on `initial` and `terminal`.
    duplicate_states: bool,
}

impl<'a> Decls<'a> {
    fn collect(machine: &'a ast::MachineDecl, report: &mut Report) -> Self {
        let mut decls = Decls {
            states: Vec::new(),
            state_index: HashMap::new(),
            actors: HashMap::new(),
            actor_order: Vec::new(),
            reasons: Vec::new(),
            calendars: HashMap::new(),
            duplicate_states: false,
        };
        let mut reason_index: HashMap<&str, &Ident> = HashMap::new();
        for item in &machine.items {
            match item {
                Item::State(s) => match decls.state_index.get(s.name.name.as_str()) {
                    Some(first) => {
                        report.duplicate("state", &first.name, &s.name);
                        decls.duplicate_states = true;
                    }
                    None => {
                        decls.state_index.insert(&s.name.name, s);
                        decls.states.push(s);
                    }
                },
                Item::Actor(a) => match decls.actors.get(a.name.name.as_str()) {
                    Some(first) => report.duplicate("actor", &first.name, &a.name),
                    None => {
                        decls.actors.insert(&a.name.name, a);
                        decls.actor_order.push(a);
                    }
                },
                Item::Reasons(r) => {
                    for code in &r.codes {
                        match reason_index.get(code.name.as_str()) {
                            Some(first) => report.duplicate("reason", first, code),
                            None => {
                                reason_index.insert(&code.name, code);
                                decls.reasons.push(code);
                            }
                        }
                    }
                }
                Item::Calendar(c) => match decls.calendars.get(c.name.name.as_str()) {
                    Some(first) => report.duplicate("calendar", &first.name, &c.name),
                    None => {
                        decls.calendars.insert(&c.name.name, c);
                    }
                },
                Item::Transition(_) | Item::Allow(_) | Item::Hook(_) => {}
            }
        }
        decls
    }

    fn state(&self, name: &str) -> Option<&'a ast::StateDecl> {
        self.state_index.get(name).copied()
    }
}

/// The transitions of a machine, in file order.
fn transitions(machine: &ast::MachineDecl) -> impl Iterator<Item = &ast::TransitionDecl> {
    machine.items.iter().filter_map(|item| match item {
        Item::Transition(t) => Some(t),
        _ => None,
    })
}

/// The keyword a transition was declared with, for messages: `on` or `override`.
fn keyword(t: &ast::TransitionDecl) -> &'static str {
    match t.kind {
        ast::TransitionKind::On => "on",
        ast::TransitionKind::Override => "override",
    }
}

fn hooks(machine: &ast::MachineDecl) -> impl Iterator<Item = &ast::HookDecl> {
    machine.items.iter().filter_map(|item| match item {
        Item::Hook(h) => Some(h),
        _ => None,
    })
}

/// Builds the model of a file that passed every check.
fn build(machine: &ast::MachineDecl, decls: &Decls<'_>, calendars: Vec<model::Calendar>) -> Model {
    let states = decls
        .states
        .iter()
        .map(|s| model::State {
            name: s.name.name.clone(),
            initial: s.has(ast::StateFlag::Initial),
            terminal: s.has(ast::StateFlag::Terminal),
            span: s.span,
        })
        .collect();
    let actors = decls
        .actor_order
        .iter()
        .map(|a| model::Actor {
            name: a.name.name.clone(),
            kind: match a.role {
                Some((ast::ActorRole::Owner, _)) => model::ActorKind::Owner,
                Some((ast::ActorRole::Staff, _)) => model::ActorKind::Staff,
                None => model::ActorKind::Service,
            },
            span: a.span,
        })
        .collect();
    let transitions = transitions(machine).map(build_transition).collect();
    let operations = machine
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Allow(a) => Some(model::Operation {
                name: a.operation.name.clone(),
                states: a.states.iter().map(|s| s.name.clone()).collect(),
            }),
            _ => None,
        })
        .collect();
    let hooks = hooks(machine)
        .map(|h| model::Hook {
            kind: match h.kind {
                ast::HookKind::Enter => model::HookKind::Enter,
                ast::HookKind::Exit => model::HookKind::Exit,
            },
            state: h.state.name.clone(),
            actions: actions(&h.clauses),
            emits: emits(&h.clauses),
        })
        .collect();
    Model {
        name: machine.name.name.clone(),
        states,
        actors,
        reasons: decls.reasons.iter().map(|r| r.name.clone()).collect(),
        calendars,
        transitions,
        operations,
        hooks,
    }
}

fn build_transition(t: &ast::TransitionDecl) -> model::Transition {
    let mut actors = Vec::new();
    let mut guard = None;
    let mut window = None;
    for clause in &t.clauses {
        match clause {
            Clause::By(by) => actors.extend(by.actors.iter().map(|a| model::ActorRule {
                actor: a.name.name.clone(),
                needs_reason: a.reason.is_some(),
            })),
            Clause::When(w) => guard = Some(build_guard(&w.guard)),
            Clause::Within(w) => window = Some(w.calendar.name.clone()),
            Clause::Do(_) | Clause::Emit(_) => {}
        }
    }
    model::Transition {
        kind: match t.kind {
            ast::TransitionKind::On => model::TransitionKind::On,
            ast::TransitionKind::Override => model::TransitionKind::Override,
        },
        event: t.event.name.clone(),
        from: t.from.iter().map(|s| s.name.clone()).collect(),
        to: t.to.name.clone(),
        actors,
        guard,
        actions: actions(&t.clauses),
        emits: emits(&t.clauses),
        window,
        span: t.span,
    }
}

/// The actions of every `do` clause, in order.
fn actions(clauses: &[Clause]) -> Vec<model::Action> {
    clauses
        .iter()
        .filter_map(|c| match c {
            Clause::Do(d) => Some(&d.actions),
            _ => None,
        })
        .flatten()
        .map(|a| model::Action {
            name: a.name.name.clone(),
            undo: a.undo.as_ref().map(|u| u.name.clone()),
        })
        .collect()
}

/// The notifications of every `emit` clause, in order.
fn emits(clauses: &[Clause]) -> Vec<String> {
    clauses
        .iter()
        .filter_map(|c| match c {
            Clause::Emit(e) => Some(&e.notifications),
            _ => None,
        })
        .flatten()
        .map(|n| n.name.clone())
        .collect()
}

/// Parentheses disappear into the tree's shape; `a and (b and c)` stays nested, since
/// it is what the user wrote and it evaluates the same.
fn build_guard(guard: &ast::GuardExpr) -> model::Guard {
    match guard {
        ast::GuardExpr::Name(i) => model::Guard::Name(i.name.clone()),
        ast::GuardExpr::Not(g, _) => model::Guard::Not(Box::new(build_guard(g))),
        ast::GuardExpr::And(gs, _) => model::Guard::And(gs.iter().map(build_guard).collect()),
        ast::GuardExpr::Or(gs, _) => model::Guard::Or(gs.iter().map(build_guard).collect()),
        ast::GuardExpr::Group(g, _) => build_guard(g),
    }
}
