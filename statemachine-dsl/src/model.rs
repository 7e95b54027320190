//! The validated machine: what graph export and code generation consume.
//!
//! **Invariant:** a `Model` only exists for a file without errors, so every name in it
//! refers to something declared, exactly one state is initial, and calendars hold real
//! time zones, times and dates. Consumers never re-check.

use chrono::{NaiveDate, NaiveTime, Weekday};
use std::fmt;

pub use crate::ast::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Model {
    pub name: String,
    /// In declaration order.
    pub states: Vec<State>,
    pub actors: Vec<Actor>,
    /// The closed set of reason codes, in declaration order.
    pub reasons: Vec<String>,
    pub calendars: Vec<Calendar>,
    /// `on` and `override` declarations in file order, the order candidates are tried.
    pub transitions: Vec<Transition>,
    /// `allow` rules in file order.
    pub operations: Vec<Operation>,
    /// `enter` and `exit` hooks in file order.
    pub hooks: Vec<Hook>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct State {
    pub name: String,
    pub initial: bool,
    pub terminal: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActorKind {
    /// Checked against the entity's owner.
    Owner,
    /// An authenticated member of staff holding this role.
    Staff,
    /// A trusted service.
    Service,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Calendar {
    pub name: String,
    pub timezone: chrono_tz::Tz,
    /// One entry per day and span, day ranges expanded, in file order.
    pub hours: Vec<OpeningHours>,
    pub closed: Vec<NaiveDate>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpeningHours {
    pub day: Weekday,
    pub open: NaiveTime,
    /// `None` stands for `24:00`, the end of the day.
    pub close: Option<NaiveTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionKind {
    On,
    Override,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    pub kind: TransitionKind,
    pub event: String,
    pub from: Vec<String>,
    pub to: String,
    pub actors: Vec<ActorRule>,
    pub guard: Option<Guard>,
    /// The `do` actions, in order.
    pub actions: Vec<Action>,
    pub emits: Vec<String>,
    /// The calendar of a `within` clause.
    pub window: Option<String>,
    pub span: Span,
}

impl Transition {
    pub fn is_override(&self) -> bool {
        self.kind == TransitionKind::Override
    }
}

/// One entry of a `by` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorRule {
    pub actor: String,
    pub needs_reason: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Action {
    pub name: String,
    pub undo: Option<String>,
}

/// A guard expression with the user's parentheses resolved into the tree's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Guard {
    Name(String),
    Not(Box<Guard>),
    And(Vec<Guard>),
    Or(Vec<Guard>),
}

impl Guard {
    /// Every guard name in the expression, left to right, repeats included.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Guard::Name(n) => out.push(n),
            Guard::Not(g) => g.collect(out),
            Guard::And(gs) | Guard::Or(gs) => gs.iter().for_each(|g| g.collect(out)),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Guard::Or(_) => 0,
            Guard::And(_) => 1,
            Guard::Not(_) | Guard::Name(_) => 2,
        }
    }

    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        if self.precedence() < parent {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Prints the expression in `.fsm` syntax with only the parentheses it needs.
impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (operands, separator) = match self {
            Guard::Name(n) => return f.write_str(n),
            Guard::Not(g) => {
                f.write_str("not ")?;
                return g.fmt_operand(f, 2);
            }
            Guard::And(gs) => (gs, " and "),
            Guard::Or(gs) => (gs, " or "),
        };
        for (i, g) in operands.iter().enumerate() {
            if i > 0 {
                f.write_str(separator)?;
            }
            // Operands of the same operator nest only through parentheses the user
            // wrote, e.g. `a and (b and c)`; printing them bracketed keeps that shape.
            g.fmt_operand(f, self.precedence() + 1)?;
        }
        Ok(())
    }
}

/// `allow op in s1, s2`
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Operation {
    pub name: String,
    pub states: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookKind {
    Enter,
    Exit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hook {
    pub kind: HookKind,
    pub state: String,
    pub actions: Vec<Action>,
    pub emits: Vec<String>,
}

impl Model {
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|s| s.name == name)
    }

    pub fn initial(&self) -> &State {
        self.states
            .iter()
            .find(|s| s.initial)
            .expect("a validated model has an initial state")
    }

    pub fn actor(&self, name: &str) -> Option<&Actor> {
        self.actors.iter().find(|a| a.name == name)
    }

    /// Event names in order of first declaration.
    pub fn events(&self) -> Vec<&str> {
        unique(self.transitions.iter().map(|t| t.event.as_str()))
    }

    /// Guard names in order of first use.
    pub fn guards(&self) -> Vec<&str> {
        unique(
            self.transitions
                .iter()
                .filter_map(|t| t.guard.as_ref())
                .flat_map(|g| g.names()),
        )
    }

    /// Action names (including undo actions) in order of first use, hooks last.
    pub fn actions(&self) -> Vec<&str> {
        let transition_actions = self.transitions.iter().flat_map(|t| &t.actions);
        let hook_actions = self.hooks.iter().flat_map(|h| &h.actions);
        unique(
            transition_actions
                .chain(hook_actions)
                .flat_map(|a| std::iter::once(a.name.as_str()).chain(a.undo.as_deref())),
        )
    }

    /// Notification names in order of first use, hooks last.
    pub fn notifications(&self) -> Vec<&str> {
        let from_transitions = self.transitions.iter().flat_map(|t| &t.emits);
        let from_hooks = self.hooks.iter().flat_map(|h| &h.emits);
        unique(from_transitions.chain(from_hooks).map(String::as_str))
    }
}

/// The names in order of first appearance, each once.
pub(crate) fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Guard::{self, *};

    fn name(n: &str) -> Guard {
        Name(n.into())
    }

    #[test]
    fn guards_print_with_only_needed_parentheses() {
        let g = And(vec![name("a"), Not(Box::new(name("b")))]);
        assert_eq!(g.to_string(), "a and not b");
        let g = Or(vec![And(vec![name("a"), name("b")]), name("c")]);
        assert_eq!(g.to_string(), "a and b or c");
        let g = And(vec![Or(vec![name("a"), name("b")]), name("c")]);
        assert_eq!(g.to_string(), "(a or b) and c");
        let g = Not(Box::new(Or(vec![name("a"), name("b")])));
        assert_eq!(g.to_string(), "not (a or b)");
        let g = And(vec![name("a"), And(vec![name("b"), name("c")])]);
        assert_eq!(g.to_string(), "a and (b and c)");
    }

    #[test]
    fn the_reference_machine_lists_its_names_in_order_of_first_use() {
        let checked = crate::check(include_str!("../../machines/order.fsm"));
        let Some(model) = checked.model else {
            panic!("order.fsm checks clean: {:?}", checked.diagnostics);
        };
        assert_eq!(model.initial().name, "pending");
        assert_eq!(
            model.events()[..4],
            ["confirm", "pay", "cancel", "start_processing"]
        );
        assert_eq!(model.events().len(), 11);
        assert_eq!(
            model.guards()[..3],
            ["inventory_available", "payment_authorized", "fraud_hold"]
        );
        // Undo actions are actions too, listed right after the action they undo.
        assert_eq!(
            model.actions()[..3],
            ["reserve_inventory", "capture_payment", "refund_payment"]
        );
        // Hook notifications come after those of the transitions.
        let notifications = model.notifications();
        assert_eq!(notifications.first(), Some(&"order_confirmed"));
        assert_eq!(
            notifications[notifications.len() - 2..],
            ["order_cancelled", "order_refunded"]
        );
        assert_eq!(
            model.actor("support").map(|a| a.kind),
            Some(super::ActorKind::Staff)
        );
        assert!(model.state("delivered").is_some_and(|s| s.terminal));
        assert_eq!(
            model.transitions.iter().filter(|t| t.is_override()).count(),
            3
        );
    }
}
