//! The names of a machine per kind, and how each becomes a Rust identifier.

use proc_macro2::{Ident, Span};

use crate::ast::{self, Clause, Item};
use crate::model::{ActorKind, Model, unique};
use crate::validate::{RESERVED, camel_case};

/// Every name of a machine per kind, each once, in order of first appearance.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pub states: Vec<String>,
    pub events: Vec<String>,
    pub actors: Vec<(String, ActorKind)>,
    pub reasons: Vec<String>,
    pub guards: Vec<String>,
    pub actions: Vec<String>,
    pub notifications: Vec<String>,
    pub operations: Vec<String>,
}

impl Names {
    pub fn from_model(model: &Model) -> Names {
        let owned = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect();
        Names {
            states: model.states.iter().map(|s| s.name.clone()).collect(),
            events: owned(model.events()),
            actors: model
                .actors
                .iter()
                .map(|a| (a.name.clone(), a.kind))
                .collect(),
            reasons: model.reasons.clone(),
            guards: owned(model.guards()),
            actions: owned(model.actions()),
            notifications: owned(model.notifications()),
            operations: owned(unique(model.operations.iter().map(|o| o.name.as_str()))),
        }
    }

    /// The names a file with errors declares, leaving out any that cannot become Rust
    /// or would collide with an earlier one, so that the fallback items compile.
    pub fn from_ast(file: &ast::File) -> Names {
        let mut names = Names::default();
        for item in &file.machine.items {
            match item {
                Item::State(s) => push(&mut names.states, &s.name.name),
                Item::Actor(a) => {
                    let kind = match a.role {
                        Some((ast::ActorRole::Owner, _)) => ActorKind::Owner,
                        Some((ast::ActorRole::Staff, _)) => ActorKind::Staff,
                        None => ActorKind::Service,
                    };
                    if usable(names.actors.iter().map(|(n, _)| n.as_str()), &a.name.name) {
                        names.actors.push((a.name.name.clone(), kind));
                    }
                }
                Item::Reasons(r) => r
                    .codes
                    .iter()
                    .for_each(|c| push(&mut names.reasons, &c.name)),
                Item::Calendar(_) => {}
                Item::Transition(t) => {
                    push(&mut names.events, &t.event.name);
                    names.clauses(&t.clauses);
                }
                Item::Allow(a) => push(&mut names.operations, &a.operation.name),
                Item::Hook(h) => names.clauses(&h.clauses),
            }
        }
        names
    }

    fn clauses(&mut self, clauses: &[Clause]) {
        for clause in clauses {
            match clause {
                Clause::When(w) => w
                    .guard
                    .names()
                    .iter()
                    .for_each(|g| push(&mut self.guards, &g.name)),
                Clause::Do(d) => {
                    for action in &d.actions {
                        push(&mut self.actions, &action.name.name);
                        if let Some(undo) = &action.undo {
                            push(&mut self.actions, &undo.name);
                        }
                    }
                }
                Clause::Emit(e) => e
                    .notifications
                    .iter()
                    .for_each(|n| push(&mut self.notifications, &n.name)),
                Clause::By(_) | Clause::Within(_) => {}
            }
        }
    }
}

fn push(list: &mut Vec<String>, name: &str) {
    if usable(list.iter().map(String::as_str), name) {
        list.push(name.to_owned());
    }
}

/// A name can join a list when it makes a valid identifier of its own and no name
/// already there becomes the same variant.
fn usable<'a>(mut existing: impl Iterator<Item = &'a str>, name: &str) -> bool {
    let variant = camel_case(name);
    is_name(name)
        && !RESERVED.contains(&name)
        && !variant.is_empty()
        && !existing.any(|other| camel_case(other) == variant)
}

/// What the grammar accepts as a name; a broken file may still hold anything.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Keywords of every edition: a method with one of these names is written `r#name`.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// A doc comment's text as `///` would write it: each line after a space, so that
/// rustdoc and a formatted expansion show it the same way.
pub(crate) fn doc(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!(" {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The enum variant of a name: `return_to_sender` is `ReturnToSender`.
pub(crate) fn variant(name: &str) -> Ident {
    Ident::new(&camel_case(name), Span::call_site())
}

/// The method of a name in the `Guards` or `Actions` trait: the name itself, raw when it
/// is a keyword.
pub(crate) fn method(name: &str) -> Ident {
    if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_raw_methods_and_names_become_camel_case_variants() {
        assert_eq!(method("type").to_string(), "r#type");
        assert_eq!(method("in_stock").to_string(), "in_stock");
        assert_eq!(variant("return_to_sender").to_string(), "ReturnToSender");
        assert_eq!(variant("type").to_string(), "Type");
    }

    #[test]
    fn a_broken_file_keeps_only_names_that_compile() {
        let mut list = Vec::new();
        // `pa__id` becomes `PaId` like `pa_id`; `self` is reserved; `Bad` is no name.
        for name in ["paid", "self", "paid", "pa_id", "pa__id", "Bad", "x1"] {
            push(&mut list, name);
        }
        assert_eq!(list, ["paid", "pa_id", "x1"]);
    }
}
