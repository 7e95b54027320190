//! Mermaid `stateDiagram-v2` export.
//!
//! Mermaid's state diagrams cannot style a single edge, so an override is told apart
//! by its label, which starts with `override`. Terminal states get an arrow to `[*]`
//! and the `terminal` class; each calendar becomes a note beside the state that its
//! first `within` transition leaves.
//!
//! The syntax follows Mermaid's `stateDiagram` grammar (`stateDiagram.jison`), whose
//! lexer dictates what text is safe where (the output was checked with Mermaid 11's
//! own parser, including the aliases below):
//! - a transition's label runs from the first `:` to the end of the line; a `;` ends
//!   it and older releases also stop at a second `:`, so both are written as entity
//!   codes (`#58;`), as is `#`, which starts an entity code itself;
//! - a few words start statements of their own (`note`, `class`, `click`, ...), and
//!   older releases match `default` as a keyword even at the start of a longer name,
//!   so states with such names are drawn under an alias (`state "note" as _note`);
//! - a multi-line `note ... end note` may contain anything but `end note`, which is
//!   why calendars, whose hours contain colons, go in that form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{calendar_lines, edges, header, label_parts};
use crate::model::Model;

/// Renders the model as a Mermaid state diagram, deterministically.
pub fn to_mermaid(model: &Model) -> String {
    let mut out = String::new();
    // Writing to a `String` cannot fail, so the `fmt::Result`s are dropped on purpose.
    let _ = write_diagram(&mut out, model);
    out
}

fn write_diagram(out: &mut String, model: &Model) -> std::fmt::Result {
    // The front matter's title shows the machine's name above the diagram.
    writeln!(out, "---")?;
    writeln!(out, "title: {}", model.name)?;
    writeln!(out, "---")?;
    writeln!(out, "stateDiagram-v2")?;
    for line in header(model) {
        writeln!(out, "    %% {line}")?;
    }
    writeln!(out, "    direction LR")?;
    writeln!(out)?;

    // Declaring every state first, in file order, keeps the layout in that order
    // rather than in the order the edges happen to mention them.
    for state in &model.states {
        let alias = id(&state.name);
        if alias == state.name {
            writeln!(out, "    {alias}")?;
        } else {
            writeln!(out, "    state \"{}\" as {alias}", state.name)?;
        }
    }
    writeln!(out)?;

    writeln!(out, "    [*] --> {}", id(&model.initial().name))?;
    for edge in edges(model) {
        let label = escape(&label_parts(edge.transition).join(" "));
        writeln!(
            out,
            "    {} --> {} : {label}",
            id(edge.from),
            id(&edge.transition.to)
        )?;
    }
    for state in model.states.iter().filter(|s| s.terminal) {
        writeln!(out, "    {} --> [*]", id(&state.name))?;
    }

    write_calendar_notes(out, model)?;

    let terminals: Vec<String> = model
        .states
        .iter()
        .filter(|s| s.terminal)
        .map(|s| id(&s.name))
        .collect();
    if !terminals.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "    classDef terminal stroke-width:3px,font-weight:bold"
        )?;
        writeln!(out, "    class {} terminal", terminals.join(","))?;
    }
    Ok(())
}

/// One note per state that carries calendars. Mermaid keeps a single note per state,
/// so calendars that belong beside the same state share one note.
fn write_calendar_notes(out: &mut String, model: &Model) -> std::fmt::Result {
    // Keyed by the anchor state's position, so notes come out in state order.
    let mut notes: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for calendar in &model.calendars {
        let anchor = edges(model)
            .find(|e| e.transition.window.as_deref() == Some(calendar.name.as_str()))
            .map_or(model.initial().name.as_str(), |e| e.from);
        let position = model
            .states
            .iter()
            .position(|s| s.name == anchor)
            .unwrap_or(0);
        let lines = notes.entry(position).or_default();
        if !lines.is_empty() {
            lines.push(String::new());
        }
        for (i, line) in calendar_lines(calendar).into_iter().enumerate() {
            lines.push(if i == 0 {
                format!("calendar {line}")
            } else {
                line
            });
        }
    }
    for (position, lines) in notes {
        let Some(state) = model.states.get(position) else {
            continue;
        };
        writeln!(out)?;
        writeln!(out, "    note right of {}", id(&state.name))?;
        for line in lines {
            // A line that reads `end note` would close the note early; none of the
            // generated lines can, but a guard here keeps that true if they change.
            let line = line.replace("end note", "end-note");
            if line.is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "        {line}")?;
            }
        }
        writeln!(out, "    end note")?;
    }
    Ok(())
}

/// The Mermaid id of a state: its own name, or `_name` when the name would be read
/// as a keyword. `.fsm` names cannot start with `_`, so aliases never collide.
fn id(name: &str) -> String {
    const STATEMENTS: [&str; 11] = [
        "note",
        "class",
        "classdef",
        "style",
        "state",
        "scale",
        "click",
        "href",
        "statediagram",
        "acctitle",
        "accdescr",
    ];
    // Mermaid reads any line holding `direction`, whitespace, then `tb`, `bt`, `rl` or
    // `lr` as a direction statement, even across a line break, and then silently drops
    // what it swallowed. A label or name may end in `direction`, and every line after
    // one starts with a state id, so ids never start with those letters.
    const DIRECTIONS: [&str; 4] = ["tb", "bt", "rl", "lr"];
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("default")
        || STATEMENTS.contains(&lower.as_str())
        || DIRECTIONS.iter().any(|d| lower.starts_with(d))
    {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// Makes text safe for the label after a transition's `:` (see the module comment).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ':' => out.push_str("#58;"),
            ';' => out.push_str("#59;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{SHOP, model};

    fn mermaid(source: &str) -> String {
        to_mermaid(&model(source))
    }

    #[test]
    fn starts_with_a_title_and_the_diagram_type() {
        let out = mermaid(SHOP);
        assert!(
            out.starts_with("---\ntitle: Shop\n---\nstateDiagram-v2\n"),
            "{out}"
        );
        assert!(out.contains("\n    direction LR\n"));
    }

    #[test]
    fn initial_and_terminal_states_connect_to_the_pseudo_state() {
        let out = mermaid(SHOP);
        assert!(out.contains("\n    [*] --> pending\n"));
        assert!(out.contains("\n    cancelled --> [*]\n"));
        assert!(out.contains("\n    done --> [*]\n"));
        assert!(!out.contains("paid --> [*]"));
        assert!(out.contains("\n    classDef terminal stroke-width:3px,font-weight:bold\n"));
        assert!(out.contains("\n    class cancelled,done terminal\n"));
    }

    #[test]
    fn one_labelled_edge_per_declaration_and_source_state() {
        let out = mermaid(SHOP);
        assert!(out.contains(
            "\n    pending --> paid : pay [payment_authorized and not fraud_hold] by customer\n"
        ));
        assert!(
            out.contains("\n    pending --> cancelled : cancel by customer, support(reason)\n")
        );
        assert!(out.contains("\n    paid --> cancelled : cancel by customer, support(reason)\n"));
        assert!(out.contains("\n    paid --> done : finish by support within business_hours\n"));
    }

    #[test]
    fn overrides_are_labelled_as_such() {
        let out = mermaid(SHOP);
        assert!(out.contains("\n    cancelled --> pending : override reopen by admin(reason)\n"));
    }

    #[test]
    fn calendars_are_notes_beside_the_state_their_window_leaves() {
        let out = mermaid(SHOP);
        assert!(out.contains(
            "\n    note right of paid\n        calendar business_hours (Europe/Berlin)\n        mon-fri 08:00-18:00\n        closed 2026-12-25\n    end note\n"
        ));
    }

    #[test]
    fn unused_calendars_share_a_note_beside_the_initial_state() {
        let out = mermaid(
            r#"
            machine M {
                state a initial
                state b terminal
                actor x
                calendar one { timezone "UTC" mon 08:00-09:00 }
                calendar two { timezone "UTC" tue 08:00-09:00 }
                on go: a -> b { by x }
            }
            "#,
        );
        assert!(out.contains(
            "\n    note right of a\n        calendar one (UTC)\n        mon 08:00-09:00\n\n        calendar two (UTC)\n        tue 08:00-09:00\n    end note\n"
        ));
        assert_eq!(out.matches("note right of").count(), 1);
    }

    #[test]
    fn states_named_like_mermaid_keywords_are_aliased() {
        let out = mermaid(
            r#"
            machine M {
                state note initial
                state default_end terminal
                actor x
                on go: note -> default_end { by x }
            }
            "#,
        );
        assert!(out.contains("\n    state \"note\" as _note\n"));
        assert!(out.contains("\n    state \"default_end\" as _default_end\n"));
        assert!(out.contains("\n    _note --> _default_end : go by x\n"));
        assert!(out.contains("\n    class _default_end terminal\n"));
        assert_eq!(id("pending"), "pending");
        assert_eq!(id("lr_review"), "_lr_review");
        assert_eq!(id("noted"), "noted");
    }

    #[test]
    fn label_text_cannot_end_the_label_early() {
        assert_eq!(escape("a: b; #c\nd"), "a#58; b#59; #35;c d");
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(mermaid(SHOP), mermaid(SHOP));
    }
}
