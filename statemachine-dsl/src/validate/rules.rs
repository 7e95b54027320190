//! Checks of the rules a transition declares: who may fire it, how overrides are
//! restricted, which declaration wins, and what its actions undo.

use std::collections::HashMap;

use super::{Decls, Report, keyword, transitions};
use crate::ast::{self, ActorRole, Clause, TransitionKind};
use crate::diagnostic::{Code, Diagnostic, Label};

pub(super) fn check(machine: &ast::MachineDecl, decls: &Decls<'_>, report: &mut Report) {
    for t in transitions(machine) {
        repeated_clauses(t, report);
        missing_by(t, report);
        leaves_terminal(t, decls, report);
        if t.kind == TransitionKind::Override {
            override_actors(t, decls, report);
        }
    }
    for item in &machine.items {
        let clauses = match item {
            ast::Item::Transition(t) => &t.clauses,
            ast::Item::Hook(h) => &h.clauses,
            _ => continue,
        };
        self_undo(clauses, report);
    }
    shadowing(machine, report);
}

/// `by`, `when` and `within` say one thing each; a second one is a contradiction or a
/// copy, and either way the reader cannot tell which was meant.
fn repeated_clauses(t: &ast::TransitionDecl, report: &mut Report) {
    let mut firsts: [Option<ast::Span>; 3] = [None; 3];
    for clause in &t.clauses {
        let (slot, name) = match clause {
            Clause::By(_) => (0, "by"),
            Clause::When(_) => (1, "when"),
            Clause::Within(_) => (2, "within"),
            Clause::Do(_) | Clause::Emit(_) => continue,
        };
        let span = clause.span();
        match firsts[slot] {
            Some(first) => report.push(
                Diagnostic::new(
                    Code::RepeatedClause,
                    format!(
                        "`{name}` appears twice in `{} {}`",
                        keyword(t),
                        t.event.name
                    ),
                    Label::new(span, "second clause"),
                )
                .with_secondary(Label::new(first, "first clause"))
                .with_help(match name {
                    "by" => "list every actor in one `by` clause: `by a, b`",
                    "when" => "combine the conditions in one `when`: `when a and b`",
                    _ => "a transition is within at most one calendar",
                }),
            ),
            None => firsts[slot] = Some(span),
        }
    }
}

fn missing_by(t: &ast::TransitionDecl, report: &mut Report) {
    if t.clauses.iter().any(|c| matches!(c, Clause::By(_))) {
        return;
    }
    report.push(
        Diagnostic::new(
            Code::NoActors,
            format!(
                "`{} {}` has no `by` clause, so nobody may fire it",
                keyword(t),
                t.event.name
            ),
            Label::new(t.keyword.to(t.event.span), "no `by` clause"),
        )
        .with_help("add a `by` clause naming who may fire it, such as `by system`"),
    );
}

fn leaves_terminal(t: &ast::TransitionDecl, decls: &Decls<'_>, report: &mut Report) {
    if t.kind != TransitionKind::On {
        return;
    }
    for from in &t.from {
        let Some(state) = decls.state(&from.name) else {
            continue;
        };
        let Some((_, flag)) = state
            .flags
            .iter()
            .find(|(f, _)| *f == ast::StateFlag::Terminal)
        else {
            continue;
        };
        report.push(
            Diagnostic::new(
                Code::LeavesTerminal,
                format!(
                    "`on {}` leaves terminal state `{}`",
                    t.event.name, from.name
                ),
                Label::new(from.span, "leaves a terminal state"),
            )
            .with_secondary(Label::new(*flag, "declared terminal here"))
            .with_help(format!(
                "only an override by staff with a reason may leave a terminal state, such as `override {}: {} -> {} {{ by {}(reason) }}`; or, if `{}` is not final, remove `terminal`",
                t.event.name,
                from.name,
                t.to.name,
                staff_actor(decls),
                from.name
            )),
        );
    }
}

/// A staff actor a help line can suggest, so that it names a real one when it can.
fn staff_actor<'a>(decls: &Decls<'a>) -> &'a str {
    decls
        .actor_order
        .iter()
        .find(|a| matches!(a.role, Some((ActorRole::Staff, _))))
        .map_or("admin", |a| a.name.name.as_str())
}

fn override_actors(t: &ast::TransitionDecl, decls: &Decls<'_>, report: &mut Report) {
    let by = t.clauses.iter().filter_map(|c| match c {
        Clause::By(b) => Some(b),
        _ => None,
    });
    let staff = staff_actor(decls);
    for actor in by.flat_map(|b| &b.actors) {
        // An undeclared actor is reported once, as undeclared.
        let Some(decl) = decls.actors.get(actor.name.name.as_str()) else {
            continue;
        };
        if !matches!(decl.role, Some((ActorRole::Staff, _))) {
            let declared = match decl.role {
                Some((_, role)) => Label::new(role, "declared `owner`, not `staff`"),
                None => Label::new(decl.name.span, "declared as a service, not `staff`"),
            };
            // The fix is to name someone else, so a missing `(reason)` on this actor
            // is not reported on top of it: it would be moot once the actor is gone.
            report.push(
                Diagnostic::new(
                    Code::OverrideNotStaff,
                    format!(
                        "override `{}` may be fired by `{}`, which is not staff",
                        t.event.name, actor.name.name
                    ),
                    Label::new(actor.name.span, "not a staff actor"),
                )
                .with_secondary(declared)
                .with_help(format!(
                    "only staff may override: name a staff actor with a reason, such as `by {staff}(reason)`"
                )),
            );
        } else if actor.reason.is_none() {
            report.push(
                Diagnostic::new(
                    Code::OverrideWithoutReason,
                    format!(
                        "override `{}` lets `{}` act without a reason",
                        t.event.name, actor.name.name
                    ),
                    Label::new(actor.span, "needs `(reason)`"),
                )
                .with_help(format!(
                    "overrides are audited with a reason: write `{}(reason)`",
                    actor.name.name
                )),
            );
        }
    }
}

fn self_undo(clauses: &[Clause], report: &mut Report) {
    let actions = clauses.iter().filter_map(|c| match c {
        Clause::Do(d) => Some(&d.actions),
        _ => None,
    });
    for action in actions.flatten() {
        if let Some(undo) = action.undo.as_ref().filter(|u| u.name == action.name.name) {
            report.push(
                Diagnostic::new(
                    Code::SelfUndo,
                    format!("action `{}` is its own undo", action.name.name),
                    Label::new(undo.span, "undoes itself"),
                )
                .with_help(format!(
                    "name the compensating action, such as `do {} undo reverse_{}`",
                    action.name.name, action.name.name
                )),
            );
        }
    }
}

/// The file-order rule: for one (state, event), the first declaration whose `by` names
/// the actor and whose guard holds wins. An unguarded one always holds, so every later
/// declaration for the same state, event and actor is dead.
fn shadowing(machine: &ast::MachineDecl, report: &mut Report) {
    // The unguarded declarations seen so far, by (event, source state), so that each
    // declaration meets only the earlier ones it could collide with: comparing every
    // pair is quadratic in a machine that reuses one event across many states.
    let mut unguarded: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    let decls: Vec<&ast::TransitionDecl> = transitions(machine).collect();
    for (index, later) in decls.iter().enumerate() {
        let mut earlier: Vec<usize> = later
            .from
            .iter()
            .filter_map(|s| unguarded.get(&(later.event.name.as_str(), s.name.as_str())))
            .flatten()
            .copied()
            .collect();
        earlier.sort_unstable();
        earlier.dedup();
        let earlier: Vec<&ast::TransitionDecl> = earlier.into_iter().map(|i| decls[i]).collect();
        report_shadowed(&earlier, later, report);
        if !later.clauses.iter().any(|c| matches!(c, Clause::When(_))) {
            for from in &later.from {
                let key = (later.event.name.as_str(), from.name.as_str());
                unguarded.entry(key).or_default().push(index);
            }
        }
    }
}

/// Reports each actor of `later` that one of the unguarded `earlier` declarations
/// (in file order) already decides for; only the first of them is named, since it is
/// the one that wins.
fn report_shadowed(
    earlier: &[&ast::TransitionDecl],
    later: &ast::TransitionDecl,
    report: &mut Report,
) {
    for actor in actors(later) {
        let winner = earlier.iter().find_map(|e| {
            let state = later
                .from
                .iter()
                .find(|s| e.from.iter().any(|f| f.name == s.name))?;
            let winner = actors(e).find(|a| a.name.name == actor.name.name)?;
            Some((state, winner))
        });
        let Some((state, winner)) = winner else {
            continue;
        };
        report.push(
            Diagnostic::new(
                Code::Shadowed,
                format!(
                    "`{}` from `{}` by `{}` is already decided by an earlier unguarded declaration",
                    later.event.name, state.name, actor.name.name
                ),
                Label::new(actor.name.span, "never chosen for this actor"),
            )
            .with_secondary(Label::new(
                winner.name.span,
                "this unguarded declaration always wins",
            ))
            .with_help("add a `when` guard to the earlier declaration, or move this one before it"),
        );
    }
}

fn actors(t: &ast::TransitionDecl) -> impl Iterator<Item = &ast::ActorRef> {
    t.clauses
        .iter()
        .filter_map(|c| match c {
            Clause::By(b) => Some(&b.actors),
            _ => None,
        })
        .flatten()
}
