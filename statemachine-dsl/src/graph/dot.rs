//! Graphviz DOT export.
//!
//! The layout runs left to right, like the life of an order. States are rounded boxes
//! because state names are long; terminal states get a second outline
//! (`peripheries=2`), the initial state an arrow from a small invisible-label point.
//! Overrides are dashed and coloured. Each calendar becomes a note-shaped node listing
//! its time zone, opening hours and closed dates.

use std::fmt::Write as _;

use super::{Edge, calendar_lines, edges, header, label_parts};
use crate::model::Model;

/// The colour of override edges and their labels: distinct from the black of ordinary
/// edges, and still readable when printed in grey.
const OVERRIDE_COLOR: &str = "#b03a2e";

/// The node that the initial arrow starts from. `.fsm` names cannot start with `_`,
/// so it never collides with a state.
const START: &str = "__start";

/// Renders the model as a Graphviz `digraph`, deterministically.
pub fn to_dot(model: &Model) -> String {
    let mut out = String::new();
    // Writing to a `String` cannot fail, so the `fmt::Result`s are dropped on purpose.
    let _ = write_graph(&mut out, model);
    out
}

fn write_graph(out: &mut String, model: &Model) -> std::fmt::Result {
    writeln!(out, "digraph {} {{", id(&model.name))?;
    for line in header(model) {
        writeln!(out, "    // {line}")?;
    }
    writeln!(out, "    rankdir=LR;")?;
    writeln!(
        out,
        "    node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    )?;
    writeln!(out, "    edge [fontname=\"Helvetica\", fontsize=10];")?;
    writeln!(out)?;

    writeln!(out, "    {START} [shape=point, width=0.15, label=\"\"];")?;
    writeln!(out, "    {START} -> {};", id(&model.initial().name))?;
    writeln!(out)?;

    for state in &model.states {
        if state.terminal {
            writeln!(out, "    {} [peripheries=2];", id(&state.name))?;
        } else {
            writeln!(out, "    {};", id(&state.name))?;
        }
    }
    writeln!(out)?;

    for edge in edges(model) {
        write_edge(out, edge)?;
    }

    if !model.calendars.is_empty() {
        writeln!(out)?;
    }
    for calendar in &model.calendars {
        // `\l` ends a left-justified line in Graphviz, which suits a list of hours
        // better than the centred lines that `\n` gives.
        let label: String = calendar_lines(calendar)
            .iter()
            .map(|line| format!("{}\\l", escape(line)))
            .collect();
        writeln!(
            out,
            "    {} [shape=note, style=\"\", fontsize=10, label=\"calendar {label}\"];",
            id(&format!("__calendar_{}", calendar.name)),
        )?;
    }
    writeln!(out, "}}")
}

fn write_edge(out: &mut String, edge: Edge<'_>) -> std::fmt::Result {
    let t = edge.transition;
    let label = label_parts(t)
        .iter()
        .map(|part| escape(part))
        .collect::<Vec<_>>()
        .join("\\n");
    write!(
        out,
        "    {} -> {} [label=\"{label}\"",
        id(edge.from),
        id(&t.to)
    )?;
    if t.is_override() {
        write!(
            out,
            ", style=dashed, color=\"{OVERRIDE_COLOR}\", fontcolor=\"{OVERRIDE_COLOR}\""
        )?;
    }
    writeln!(out, "];")
}

/// A DOT identifier: bare when it is a plain name, quoted when it is one of DOT's
/// keywords (which are case-insensitive) or contains anything else.
fn id(name: &str) -> String {
    const KEYWORDS: [&str; 6] = ["node", "edge", "graph", "digraph", "subgraph", "strict"];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let keyword = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name));
    if plain && !keyword {
        name.to_owned()
    } else {
        format!("\"{}\"", escape(name))
    }
}

/// Escapes text for a double-quoted DOT string. Backslashes are doubled because
/// Graphviz reads `\n`, `\l` and `\N` in labels as escapes of its own.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{SHOP, model};

    fn dot(source: &str) -> String {
        to_dot(&model(source))
    }

    #[test]
    fn starts_with_the_digraph_and_marks_the_initial_state() {
        let out = dot(SHOP);
        assert!(out.starts_with("digraph Shop {\n"), "{out}");
        assert!(out.contains("    __start [shape=point, width=0.15, label=\"\"];\n"));
        assert!(out.contains("    __start -> pending;\n"));
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn terminal_states_get_a_second_outline() {
        let out = dot(SHOP);
        assert!(out.contains("    cancelled [peripheries=2];\n"));
        assert!(out.contains("    done [peripheries=2];\n"));
        assert!(out.contains("    paid;\n"));
    }

    #[test]
    fn one_edge_per_declaration_and_source_state() {
        let out = dot(SHOP);
        assert!(out.contains(
            "    pending -> paid [label=\"pay\\n[payment_authorized and not fraud_hold]\\nby customer\"];\n"
        ));
        assert!(out.contains(
            "    pending -> cancelled [label=\"cancel\\nby customer, support(reason)\"];\n"
        ));
        assert!(out.contains(
            "    paid -> cancelled [label=\"cancel\\nby customer, support(reason)\"];\n"
        ));
        assert!(out.contains(
            "    paid -> done [label=\"finish\\nby support\\nwithin business_hours\"];\n"
        ));
    }

    #[test]
    fn overrides_are_dashed_coloured_and_labelled() {
        let out = dot(SHOP);
        assert!(out.contains(
            "    cancelled -> pending [label=\"override reopen\\nby admin(reason)\", style=dashed, color=\"#b03a2e\", fontcolor=\"#b03a2e\"];\n"
        ));
        let dashed = out.lines().filter(|l| l.contains("style=dashed")).count();
        assert_eq!(dashed, 1);
    }

    #[test]
    fn calendars_become_notes() {
        let out = dot(SHOP);
        assert!(out.contains(
            "    __calendar_business_hours [shape=note, style=\"\", fontsize=10, label=\"calendar business_hours (Europe/Berlin)\\lmon-fri 08:00-18:00\\lclosed 2026-12-25\\l\"];\n"
        ));
    }

    #[test]
    fn keywords_and_odd_names_are_quoted() {
        assert_eq!(id("pending"), "pending");
        assert_eq!(id("node"), "\"node\"");
        assert_eq!(id("Graph"), "\"Graph\"");
        assert_eq!(id("a b"), "\"a b\"");
        assert_eq!(escape("say \"hi\"\\\nbye"), "say \\\"hi\\\"\\\\\\nbye");
    }

    #[test]
    fn states_named_like_dot_keywords_still_make_a_valid_graph() {
        let out = dot(r#"
            machine Graph {
                state node initial
                state edge terminal
                actor x
                on go: node -> edge { by x }
            }
        "#);
        assert!(out.starts_with("digraph \"Graph\" {\n"));
        assert!(out.contains("    \"node\" -> \"edge\" [label=\"go\\nby x\"];\n"));
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(dot(SHOP), dot(SHOP));
    }
}
