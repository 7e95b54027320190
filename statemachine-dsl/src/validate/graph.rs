//! Checks of the machine's shape: one initial state, every state reachable, no state
//! stuck, every state able to finish, and hooks on states that are entered or left.

use std::collections::{HashMap, VecDeque};

use super::{Decls, Report, hooks, transitions};
use crate::ast::{self, HookKind, StateFlag};
use crate::diagnostic::{Code, Diagnostic, Label};

/// Checks the initial state, then (when there is exactly one and every state name
/// resolves) the reachability of the graph. Returns whether the graph was checked.
pub(super) fn check(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    let Some(initial) = initial_state(machine, decls, report) else {
        return;
    };
    let names_resolve = report
        .diagnostics
        .iter()
        .all(|d| !matches!(d.code, Code::UndeclaredState | Code::Duplicate));
    if names_resolve {
        Graph::new(machine, decls).check(initial, machine, report);
    }
}

fn initial_state<'a>(
    machine: &ast::MachineDecl,
    decls: &Decls<'a>,
    report: &mut Report,
) -> Option<&'a ast::StateDecl> {
    let initials: Vec<&ast::StateDecl> = decls
        .states
        .iter()
        .copied()
        .filter(|s| s.has(StateFlag::Initial))
        .collect();
    match initials.as_slice() {
        [one] => Some(one),
        [] => {
            let (span, message) = match decls.states.first() {
                Some(first) => (first.name.span, "mark one state `initial`"),
                None => (machine.name.span, "declare the states, one of them `initial`"),
            };
            report.push(
                Diagnostic::new(
                    Code::NoInitial,
                    format!("machine `{}` has no initial state", machine.name.name),
                    Label::new(span, "no state here is initial"),
                )
                .with_help(format!("{message}, such as `state pending initial`")),
            );
            None
        }
        [first, rest @ ..] => {
            for again in rest {
                let flag = again
                    .flags
                    .iter()
                    .find(|(f, _)| *f == StateFlag::Initial)
                    .map_or(again.name.span, |(_, span)| *span);
                report.push(
                    Diagnostic::new(
                        Code::SeveralInitial,
                        format!(
                            "states `{}` and `{}` are both initial",
                            first.name.name, again.name.name
                        ),
                        Label::new(flag, "second initial state"),
                    )
                    .with_secondary(Label::new(first.name.span, "first initial state"))
                    .with_help("a machine starts in exactly one state; remove one `initial`"),
                );
            }
            None
        }
    }
}

/// Edges between distinct states, indexed by state name.
struct Graph<'a> {
    states: Vec<&'a ast::StateDecl>,
    out: HashMap<&'a str, Vec<&'a str>>,
    into: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Graph<'a> {
    fn new(machine: &'a ast::MachineDecl, decls: &Decls<'a>) -> Self {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut into: HashMap<&str, Vec<&str>> = HashMap::new();
        for t in transitions(machine) {
            for from in &t.from {
                if from.name != t.to.name {
                    out.entry(&from.name).or_default().push(&t.to.name);
                    into.entry(&t.to.name).or_default().push(&from.name);
                }
            }
        }
        Graph {
            states: decls.states.clone(),
            out,
            into,
        }
    }

    /// Every state reachable from `start` along `edges`, `start` included.
    fn reachable(edges: &HashMap<&'a str, Vec<&'a str>>, starts: &[&'a str]) -> Vec<&'a str> {
        let mut seen: Vec<&str> = starts.to_vec();
        let mut queue: VecDeque<&str> = starts.iter().copied().collect();
        while let Some(state) = queue.pop_front() {
            for &next in edges.get(state).into_iter().flatten() {
                if !seen.contains(&next) {
                    seen.push(next);
                    queue.push_back(next);
                }
            }
        }
        seen
    }

    fn check(&self, initial: &'a ast::StateDecl, machine: &ast::MachineDecl, report: &mut Report) {
        let from_initial = Self::reachable(&self.out, &[&initial.name.name]);
        let terminals: Vec<&str> = self
            .states
            .iter()
            .filter(|s| s.has(StateFlag::Terminal))
            .map(|s| s.name.name.as_str())
            .collect();
        let can_finish = Self::reachable(&self.into, &terminals);
        for state in &self.states {
            let name = state.name.name.as_str();
            let terminal = state.has(StateFlag::Terminal);
            if !from_initial.contains(&name) {
                report.push(
                    Diagnostic::new(
                        Code::Unreachable,
                        format!(
                            "state `{name}` cannot be reached from the initial state `{}`",
                            initial.name.name
                        ),
                        Label::new(state.name.span, "unreachable"),
                    )
                    .with_help(format!(
                        "add a transition into `{name}` from a reachable state, or remove it"
                    )),
                );
            }
            if terminal {
                continue;
            }
            if !self.out.contains_key(name) {
                report.push(
                    Diagnostic::new(
                        Code::DeadEnd,
                        format!("state `{name}` is not terminal but has no way out"),
                        Label::new(state.name.span, "no transition leaves this state"),
                    )
                    .with_help(format!(
                        "add a transition out of `{name}`, or mark it `terminal`"
                    )),
                );
            } else if !can_finish.contains(&name) {
                report.push(
                    Diagnostic::new(
                        Code::NoTerminalReachable,
                        format!("no terminal state can be reached from state `{name}`"),
                        Label::new(state.name.span, "every path from here loops forever"),
                    )
                    .with_help("add a transition from this state or its successors to a terminal state"),
                );
            }
        }
        self.hooks(machine, report);
    }

    fn hooks(&self, machine: &ast::MachineDecl, report: &mut Report) {
        for hook in hooks(machine) {
            let name = hook.state.name.as_str();
            let (edges, kind, verb) = match hook.kind {
                HookKind::Enter => (&self.into, "enter", "enters"),
                HookKind::Exit => (&self.out, "exit", "leaves"),
            };
            if !edges.contains_key(name) {
                report.push(
                    Diagnostic::new(
                        Code::HookNeverRuns,
                        format!("`{kind} {name}` never runs: no transition {verb} `{name}`"),
                        Label::new(hook.state.span, "never runs"),
                    )
                    .with_help("remove the hook, or add the transition it is waiting for"),
                );
            }
        }
    }
}
