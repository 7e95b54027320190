//! The canonical layout of a `.fsm` file (`fsm fmt`).
//!
//! The formatter prints the syntax tree back in one layout, so that two people who write
//! the same machine get the same text, and a diff shows only what changed in meaning.
//! `machines/order.fsm` is the model: formatting it returns it unchanged.
//!
//! # Layout
//!
//! - `machine Name {` on the first line, `}` on the last; items are indented 4 spaces,
//!   the clauses of a block (transition, override, calendar, multi-line hook) 8, one
//!   clause per line, and the block closes with `}` at the item's indentation.
//! - Tokens are separated by single spaces, lists by `, `, and `->` has one space on
//!   each side. `support(reason)`, `a undo b`, `mon-fri` and `08:00-18:00` are written
//!   without inner spaces. Guards are printed as written, with the user's parentheses
//!   and nothing more.
//! - Alignment: within a run of consecutive `state` and `actor` declarations the flags
//!   and roles start in one column (one space after the longest name of the run), as
//!   do the `in` of consecutive `allow` rules and the `{` of consecutive one-line hooks.
//!   In a calendar, the hours start in one column after the day ranges and `closed`.
//!   Blank lines and comments do not break a run; any other item does.
//! - Lists (`reasons`, the states of `allow`, the sources of a transition, `by`, `do`,
//!   `emit`, hours and closed dates) fill the line up to 80 columns and continue on
//!   lines aligned under the list's first element. (80 is the width at which
//!   `order.fsm` is laid out.) A line holding a single element, and a guard, may be
//!   longer: neither is ever split.
//! - A hook with at most one clause is written on one line, `enter s { emit n }`, when
//!   that fits in 80 columns before alignment; otherwise it is a block like a
//!   transition. A transition
//!   without clauses is written `on e: a -> b {}`.
//! - Blank lines: there is always exactly one blank line between two items of different
//!   kinds (states, actors, reasons, calendars, transitions and overrides together,
//!   hooks, allow rules). Elsewhere a blank line is kept where the user had one or
//!   more, and none is added; there is never one just after a `{` or just before a `}`.
//!
//! # Comments
//!
//! Every comment is kept, in source order, with its text unchanged except that no
//! output line ends with whitespace. A comment is attached to the line of output whose
//! tokens it follows or precedes:
//!
//! - after the last token of a line and on the same source line: it stays at the end
//!   of that line (for a list split over several lines, the end of the last one);
//! - on its own line: it stays on its own line, indented like the line that follows it
//!   (like the clauses when that line is a block's closing `}`), before that line;
//! - between two tokens of one line (`state a /* x */ initial`): the line is reformatted,
//!   so the comment moves to its own line just before it.
//!
//! Comments before `machine` and after the closing `}` stay there, unindented.

mod comments;
mod emit;
mod layout;
#[cfg(test)]
mod tests;

use crate::diagnostic::Diagnostic;

/// The width that lists are filled to.
const WIDTH: usize = 80;
/// The indentation of one level.
const INDENT: usize = 4;

/// Formats a file, or returns its syntax errors (the parser's diagnostics) when it does
/// not parse; the caller should then leave the file alone.
pub fn format(source: &str) -> Result<String, Vec<Diagnostic>> {
    let file = crate::parse(source)?;
    let lines = layout::lines(&file, source, &file.comments);
    let attached = comments::attach(source, &lines, &file.comments);
    Ok(emit::render(source, &lines, &attached))
}
