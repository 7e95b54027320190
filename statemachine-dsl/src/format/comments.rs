//! Deciding which line of output each comment goes with.

use super::layout::Line;
use crate::ast::Span;

/// The comments that go with each line (indexed like the lines), and those after the
/// last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Attached {
    /// On their own lines before the line: first those that were before it, then those
    /// that were between its tokens.
    pub before: Vec<Vec<Span>>,
    /// At the end of the line.
    pub trailing: Vec<Vec<Span>>,
    /// On their own lines after the last line (after the machine's `}`).
    pub after: Vec<Span>,
}

/// Attaches each comment to a line; see the module documentation of `format` for the
/// rules. `lines` must be in source order.
pub(super) fn attach(source: &str, lines: &[Line], comments: &[Span]) -> Attached {
    let mut attached = Attached {
        before: vec![Vec::new(); lines.len()],
        trailing: vec![Vec::new(); lines.len()],
        after: Vec::new(),
    };
    for &comment in comments {
        // The last line that starts before the comment.
        let next = lines.partition_point(|line| line.span.start <= comment.start);
        let Some(line) = next.checked_sub(1).and_then(|i| lines.get(i)) else {
            // Before `machine`: goes with the first line.
            if let Some(before) = attached.before.first_mut() {
                before.push(comment);
            } else {
                attached.after.push(comment);
            }
            continue;
        };
        let previous = next - 1;
        let between = source.get(line.span.end..comment.start);
        if comment.start < line.span.end {
            // Between the line's tokens; comments are attached in source order, so these
            // come after the ones that were before the line.
            attached.before[previous].push(comment);
        } else if between.is_some_and(|text| !text.contains('\n')) {
            attached.trailing[previous].push(comment);
        } else if let Some(before) = attached.before.get_mut(next) {
            before.push(comment);
        } else {
            attached.after.push(comment);
        }
    }
    attached
}
