//! Checks of the machine's shape: one initial state, every state reachable, no state
//! stuck, every state able to finish, and hooks on states that are entered or left.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Decls, Report, hooks, transitions};
use crate::ast::{self, HookKind, StateFlag};
use crate::diagnostic::{Code, Diagnostic, Label};

/// Checks the initial state, then (when there is exactly one and every state name
/// resolves to one declaration) the reachability of the graph.
pub(super) fn check(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    let Some(initial) = initial_state(machine, decls, report) else {
        return;
    };
    // A transition to an undeclared state is most often a typo of a declared one, which
    // would then look unreachable: the graph is only checked once every name resolves,
    // so that the one typo is reported once.
    let names_resolve = !decls.duplicate_states
        && report
            .diagnostics
            .iter()
            .all(|d| d.code != Code::UndeclaredState);
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
            // The machine's name is where the problem is: no single state is wrong.
            let help = match decls.states.first() {
                Some(first) => format!(
                    "mark the state where the machine starts `initial`, such as `state {} initial`",
                    first.name.name
                ),
                None => {
                    "declare the states, one of them `initial`, such as `state pending initial`"
                        .to_owned()
                }
            };
            report.push(
                Diagnostic::new(
                    Code::NoInitial,
                    format!("machine `{}` has no initial state", machine.name.name),
                    Label::new(machine.name.span, "no state of this machine is `initial`"),
                )
                .with_help(help),
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

    /// Every state reachable from `starts` along `edges`, the starts included.
    fn reachable(edges: &HashMap<&'a str, Vec<&'a str>>, starts: &[&'a str]) -> HashSet<&'a str> {
        let mut seen: HashSet<&str> = starts.iter().copied().collect();
        let mut queue: VecDeque<&str> = starts.iter().copied().collect();
        while let Some(state) = queue.pop_front() {
            for &next in edges.get(state).into_iter().flatten() {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        seen
    }

    fn check(&self, initial: &'a ast::StateDecl, machine: &ast::MachineDecl, report: &mut Report) {
        let from_initial = Self::reachable(&self.out, &[&initial.name.name]);
        let isolated = |name: &str| !self.out.contains_key(name) && !self.into.contains_key(name);
        for state in &self.states {
            let name = state.name.name.as_str();
            if from_initial.contains(name) {
                continue;
            }
            // A state that no transition mentions is one mistake (a leftover, or
            // transitions not written yet), reported once rather than as unreachable
            // and as a dead end.
            let d = if isolated(name) && !state.has(StateFlag::Terminal) {
                Diagnostic::new(
                    Code::Unreachable,
                    format!("state `{name}` is declared but no transition enters or leaves it"),
                    Label::new(state.name.span, "not used by any transition"),
                )
                .with_help(format!(
                    "add transitions into and out of `{name}`, or remove it"
                ))
            } else {
                Diagnostic::new(
                    Code::Unreachable,
                    format!(
                        "state `{name}` cannot be reached from the initial state `{}`",
                        initial.name.name
                    ),
                    Label::new(state.name.span, "no path from the initial state leads here"),
                )
                .with_help(format!(
                    "add a transition into `{name}` from a reachable state, or remove it"
                ))
            };
            report.push(d);
        }
        let dead_ends: Vec<&str> = self
            .states
            .iter()
            .filter(|s| !s.has(StateFlag::Terminal) && !self.out.contains_key(s.name.name.as_str()))
            .map(|s| s.name.name.as_str())
            .collect();
        let is_dead_end: HashSet<&str> = dead_ends.iter().copied().collect();
        let reported_dead_end = |s: &&&ast::StateDecl| {
            let name = s.name.name.as_str();
            is_dead_end.contains(name) && (from_initial.contains(name) || !isolated(name))
        };
        for state in self.states.iter().filter(reported_dead_end) {
            let name = state.name.name.as_str();
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
        }
        self.traps(&dead_ends, report);
        self.hooks(machine, initial, report);
    }

    /// States from which no terminal state can be reached. A dead end is already
    /// reported, and every state upstream of it would otherwise be reported too, for
    /// the one missing transition: dead ends count as if they finished here. The states
    /// left over are caught in loops; each loop (a group of such states linked by
    /// transitions) is one diagnostic, pointing at all of its states.
    fn traps(&self, dead_ends: &[&'a str], report: &mut Report) {
        let mut finish: Vec<&str> = self
            .states
            .iter()
            .filter(|s| s.has(StateFlag::Terminal))
            .map(|s| s.name.name.as_str())
            .collect();
        finish.extend_from_slice(dead_ends);
        let can_finish = Self::reachable(&self.into, &finish);
        let stuck: Vec<&ast::StateDecl> = self
            .states
            .iter()
            .copied()
            .filter(|s| !can_finish.contains(s.name.name.as_str()))
            .collect();
        let is_stuck: HashSet<&str> = stuck.iter().map(|s| s.name.name.as_str()).collect();
        let mut grouped: HashSet<&str> = HashSet::new();
        for seed in &stuck {
            if grouped.contains(seed.name.name.as_str()) {
                continue;
            }
            let group = self.group(seed, &stuck, &is_stuck);
            grouped.extend(group.iter().map(|s| s.name.name.as_str()));
            let names: Vec<String> = group.iter().map(|s| format!("`{}`", s.name.name)).collect();
            let message = match names.as_slice() {
                [one] => format!("no terminal state can be reached from state {one}"),
                [init @ .., last] => format!(
                    "no terminal state can be reached from states {} and {last}",
                    init.join(", ")
                ),
                [] => continue,
            };
            let mut d = Diagnostic::new(
                Code::NoTerminalReachable,
                message,
                Label::new(seed.name.span, "every path from here loops back"),
            )
            .with_help(
                "add a transition from one of these states to a terminal state, or to a state that reaches one",
            );
            for other in &group[1..] {
                d = d.with_secondary(Label::new(other.name.span, "part of the same loop"));
            }
            report.push(d);
        }
    }

    /// The stuck states linked to `seed` by transitions in either direction, in
    /// declaration order with `seed` first.
    fn group(
        &self,
        seed: &'a ast::StateDecl,
        stuck: &[&'a ast::StateDecl],
        is_stuck: &HashSet<&str>,
    ) -> Vec<&'a ast::StateDecl> {
        let mut seen: HashSet<&str> = HashSet::from([seed.name.name.as_str()]);
        let mut queue = VecDeque::from([seed.name.name.as_str()]);
        while let Some(state) = queue.pop_front() {
            let neighbours = self.out.get(state).into_iter().chain(self.into.get(state));
            for &next in neighbours.flatten() {
                if is_stuck.contains(next) && seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        let mut group = vec![seed];
        group.extend(
            stuck
                .iter()
                .copied()
                .filter(|s| s.name.name != seed.name.name && seen.contains(s.name.name.as_str())),
        );
        group
    }

    fn hooks(&self, machine: &ast::MachineDecl, initial: &ast::StateDecl, report: &mut Report) {
        for hook in hooks(machine) {
            let name = hook.state.name.as_str();
            let (edges, kind, verb) = match hook.kind {
                HookKind::Enter => (&self.into, "enter", "enters"),
                HookKind::Exit => (&self.out, "exit", "leaves"),
            };
            if edges.contains_key(name) {
                continue;
            }
            // The initial state is where an entity is created, without a transition;
            // that an `enter` hook does not run then is the surprise worth explaining,
            // as is that only an override leaves a terminal state.
            let terminal = self
                .states
                .iter()
                .any(|s| s.name.name == name && s.has(StateFlag::Terminal));
            let help = if hook.kind == HookKind::Enter && name == initial.name.name {
                format!(
                    "`{name}` is the initial state: an entity is created in it without a transition, so no `enter` hook runs; do the work where the entity is created, or remove the hook"
                )
            } else if hook.kind == HookKind::Exit && terminal {
                format!(
                    "`{name}` is terminal, so only an `override` can leave it; remove the hook, or add the override it is waiting for"
                )
            } else {
                "remove the hook, or add the transition it is waiting for".to_owned()
            };
            report.push(
                Diagnostic::new(
                    Code::HookNeverRuns,
                    format!("`{kind} {name}` never runs: no transition {verb} `{name}`"),
                    Label::new(hook.state.span, "never runs"),
                )
                .with_help(help),
            );
        }
    }
}
