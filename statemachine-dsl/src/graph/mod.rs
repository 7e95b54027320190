//! Graph export of a model: Graphviz DOT and Mermaid `stateDiagram-v2`.
//!
//! Both exports show the same facts, so that a pull request that changes a machine
//! shows the change in whichever picture the reviewer looks at: the initial state,
//! the terminal states, one edge per declaration and source state labelled with its
//! event, guard, actors and processing window, overrides set apart from ordinary
//! transitions, and every calendar's time zone, opening hours and closed dates.
//!
//! **Invariant:** the output is a pure function of the model and follows the model's
//! order (states, transitions and calendars as declared), so the same file always gives
//! the same bytes and committed graphs can be compared with a fresh export.

mod dot;
mod mermaid;

pub use dot::to_dot;
pub use mermaid::to_mermaid;

use chrono::{NaiveTime, Weekday};

use crate::model::{Calendar, Model, Transition};

/// One arrow of the picture: a declaration leaving one of its source states.
#[derive(Clone, Copy, Debug)]
struct Edge<'a> {
    from: &'a str,
    transition: &'a Transition,
}

/// Every edge, in file order of the declarations and then of their source states.
fn edges(model: &Model) -> impl Iterator<Item = Edge<'_>> {
    model.transitions.iter().flat_map(|transition| {
        transition.from.iter().map(move |from| Edge {
            from: from.as_str(),
            transition,
        })
    })
}

/// The parts of an edge's label, one per clause that is present:
/// `pay`, `[payment_authorized and not fraud_hold]`, `by customer, system`,
/// `within business_hours`. An override's first part reads `override reopen`, so that
/// the distinction survives in formats that cannot style a single edge.
fn label_parts(t: &Transition) -> Vec<String> {
    let mut parts = Vec::with_capacity(4);
    if t.is_override() {
        parts.push(format!("override {}", t.event));
    } else {
        parts.push(t.event.clone());
    }
    if let Some(guard) = &t.guard {
        parts.push(format!("[{guard}]"));
    }
    if !t.actors.is_empty() {
        let actors: Vec<String> = t
            .actors
            .iter()
            .map(|rule| {
                if rule.needs_reason {
                    format!("{}(reason)", rule.actor)
                } else {
                    rule.actor.clone()
                }
            })
            .collect();
        parts.push(format!("by {}", actors.join(", ")));
    }
    if let Some(window) = &t.window {
        parts.push(format!("within {window}"));
    }
    parts
}

/// How many closed dates go on one line of a calendar's note; a long holiday list
/// would otherwise make the note wider than the whole graph.
const DATES_PER_LINE: usize = 3;

/// A calendar as lines of text, in the `.fsm` spelling where one exists:
/// `business_hours (Europe/Berlin)`, `mon-fri 08:00-18:00`, `sat 09:00-13:00`,
/// `closed 2026-12-25, 2026-12-26, 2027-01-01`.
///
/// The model holds one entry per day and span; consecutive days with the same spans
/// are folded back into a range, so the note reads like the file that declared it.
fn calendar_lines(calendar: &Calendar) -> Vec<String> {
    let mut lines = vec![format!("{} ({})", calendar.name, calendar.timezone.name())];
    for (first, last, spans) in opening_ranges(calendar) {
        let days = if first == last {
            day_name(first)
        } else {
            format!("{}-{}", day_name(first), day_name(last))
        };
        lines.push(format!("{days} {}", spans.join(", ")));
    }
    let dates: Vec<String> = calendar
        .closed
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    for (i, chunk) in dates.chunks(DATES_PER_LINE).enumerate() {
        let mut line = chunk.join(", ");
        if i == 0 {
            line.insert_str(0, "closed ");
        } else {
            // Continuation lines line up under the first date.
            line.insert_str(0, "       ");
        }
        if (i + 1) * DATES_PER_LINE < dates.len() {
            line.push(',');
        }
        lines.push(line);
    }
    lines
}

/// Runs of consecutive open days with identical spans: `(first, last, spans)`,
/// from Monday to Sunday. Days without opening hours are left out: they are closed.
fn opening_ranges(calendar: &Calendar) -> Vec<(Weekday, Weekday, Vec<String>)> {
    let mut ranges: Vec<(Weekday, Weekday, Vec<String>)> = Vec::new();
    for n in 0..7u8 {
        let Ok(day) = Weekday::try_from(n) else {
            continue;
        };
        let mut hours: Vec<_> = calendar.hours.iter().filter(|h| h.day == day).collect();
        if hours.is_empty() {
            continue;
        }
        // Spans cannot overlap in a valid calendar, so their opening times order them.
        hours.sort_by_key(|h| h.open);
        let spans: Vec<String> = hours
            .iter()
            .map(|h| format!("{}-{}", time(Some(h.open)), time(h.close)))
            .collect();
        match ranges.last_mut() {
            Some((_, last, previous)) if *previous == spans && last.succ() == day => {
                *last = day;
            }
            _ => ranges.push((day, day, spans)),
        }
    }
    ranges
}

fn day_name(day: Weekday) -> String {
    day.to_string().to_lowercase()
}

/// `HH:MM`, with `None` standing for the `24:00` that closes a span at midnight.
fn time(t: Option<NaiveTime>) -> String {
    t.map_or_else(|| "24:00".to_owned(), |t| t.format("%H:%M").to_string())
}

/// The comment both exports open with: where the picture comes from and how to read
/// the one convention that is not standard notation.
fn header(model: &Model) -> [String; 2] {
    [
        format!(
            "Generated from machine {} by `fsm graph`; edit the .fsm file, not this one.",
            model.name
        ),
        "Edges labelled \"override\" are staff-only corrections, marked in the audit trail."
            .to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check;

    /// The model of a test machine that must check clean.
    pub(super) fn model(source: &str) -> Model {
        let checked = check(source);
        match checked.model {
            Some(model) => model,
            None => panic!("test machine has errors: {:?}", checked.diagnostics),
        }
    }

    /// A small shop machine with every feature the graphs draw, shared by the tests of
    /// both formats.
    pub(super) const SHOP: &str = r#"
        machine Shop {
            state pending initial
            state paid
            state cancelled terminal
            state done terminal
            actor customer owner
            actor support staff
            actor admin staff
            reasons other
            calendar business_hours {
                timezone "Europe/Berlin"
                mon-fri 08:00-18:00
                closed 2026-12-25
            }
            on pay: pending -> paid {
                by customer
                when payment_authorized and not fraud_hold
            }
            on cancel: pending, paid -> cancelled { by customer, support(reason) }
            on finish: paid -> done { by support within business_hours }
            override reopen: cancelled -> pending { by admin(reason) }
        }
    "#;

    const SPLIT_HOURS: &str = r#"
        machine Desk {
            state open initial
            state done terminal
            actor clerk
            calendar office {
                timezone "America/New_York"
                mon-fri 09:00-12:00, 13:00-17:00
                wed 17:00-24:00
                sun 10:00-14:00
                closed 2026-01-01, 2026-07-04, 2026-11-26, 2026-12-25
            }
            on close: open -> done { by clerk within office }
        }
    "#;

    #[test]
    fn calendar_lines_fold_days_with_equal_spans_into_ranges() {
        let m = model(SPLIT_HOURS);
        assert_eq!(
            calendar_lines(&m.calendars[0]),
            [
                "office (America/New_York)",
                "mon-tue 09:00-12:00, 13:00-17:00",
                "wed 09:00-12:00, 13:00-17:00, 17:00-24:00",
                "thu-fri 09:00-12:00, 13:00-17:00",
                "sun 10:00-14:00",
                "closed 2026-01-01, 2026-07-04, 2026-11-26,",
                "       2026-12-25",
            ]
        );
    }

    #[test]
    fn days_with_a_gap_between_them_are_not_one_range() {
        let m = model(
            r#"
            machine Gap {
                state a initial
                state b terminal
                actor x
                calendar c { timezone "UTC" mon 08:00-09:00 wed 08:00-09:00 }
                on go: a -> b { by x within c }
            }
            "#,
        );
        assert_eq!(
            calendar_lines(&m.calendars[0]),
            ["c (UTC)", "mon 08:00-09:00", "wed 08:00-09:00"]
        );
    }

    #[test]
    fn label_parts_name_every_clause_in_order() {
        let m = model(
            r#"
            machine Shop {
                state a initial
                state b terminal
                actor customer owner
                actor support staff
                reasons other
                calendar hours { timezone "UTC" mon-fri 09:00-17:00 }
                on go: a -> b {
                    by customer, support(reason)
                    when (x or y) and not z
                    within hours
                }
                override back: b -> a { by support(reason) }
            }
            "#,
        );
        assert_eq!(
            label_parts(&m.transitions[0]),
            [
                "go",
                "[(x or y) and not z]",
                "by customer, support(reason)",
                "within hours"
            ]
        );
        assert_eq!(
            label_parts(&m.transitions[1]),
            ["override back", "by support(reason)"]
        );
    }

    #[test]
    fn edges_follow_declarations_then_source_states() {
        let m = model(
            r#"
            machine M {
                state a initial
                state b
                state c terminal
                actor x
                on go: b, a -> c { by x }
                on step: a -> b { by x }
            }
            "#,
        );
        let pairs: Vec<(&str, &str)> = edges(&m)
            .map(|e| (e.from, e.transition.event.as_str()))
            .collect();
        assert_eq!(pairs, [("b", "go"), ("a", "go"), ("a", "step")]);
    }
}
