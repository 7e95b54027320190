//! Printing the lines and their comments, with the blank lines between them.

use super::comments::Attached;
use super::layout::{Kind, Line, Shape, Tail};
use super::{INDENT, WIDTH};
use crate::ast::Span;

/// Something printed on lines of its own: a line of output with its trailing comments,
/// or a comment on its own line.
#[derive(Debug)]
struct Element {
    /// Where it was in the source: from its first character to the end of its last
    /// trailing comment.
    start: usize,
    end: usize,
    item: Option<(usize, Kind)>,
    /// Opens a block (nothing blank may follow it) or closes one (nothing blank may
    /// precede it).
    opens: bool,
    closes: bool,
    text: String,
}

/// The formatted file.
pub(super) fn render(source: &str, lines: &[Line], attached: &Attached) -> String {
    let mut elements = Vec::new();
    let no_comments = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let depth = line.comment_depth();
        for &comment in attached.before.get(index).unwrap_or(&no_comments) {
            elements.push(own_line(source, comment, depth, line.item));
        }
        let trailing = attached.trailing.get(index).unwrap_or(&no_comments);
        let mut text = render_line(line).join("\n");
        for comment in trailing {
            text.push(' ');
            text.push_str(comment_text(source, *comment));
        }
        elements.push(Element {
            start: line.span.start,
            end: trailing.last().map_or(line.span.end, |c| c.end),
            item: line.item,
            opens: line.shape == Shape::Open,
            closes: line.shape == Shape::Close,
            text,
        });
    }
    for &comment in &attached.after {
        elements.push(own_line(source, comment, 0, None));
    }

    let mut out = String::with_capacity(source.len() + source.len() / 4);
    let mut previous: Option<&Element> = None;
    for element in &elements {
        if previous.is_some_and(|previous| blank_between(source, previous, element)) {
            out.push('\n');
        }
        // No line ends with whitespace, not even inside a block comment (where it would
        // also turn `\r\n` line ends into `\n`).
        for line in element.text.split('\n') {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        previous = Some(element);
    }
    out
}

fn own_line(source: &str, comment: Span, depth: usize, item: Option<(usize, Kind)>) -> Element {
    Element {
        start: comment.start,
        end: comment.end,
        item,
        opens: false,
        closes: false,
        text: format!("{}{}", indent(depth), comment_text(source, comment)),
    }
}

fn comment_text(source: &str, comment: Span) -> &str {
    source.get(comment.range()).unwrap_or_default()
}

fn indent(depth: usize) -> String {
    " ".repeat(depth * INDENT)
}

/// Whether a blank line separates two consecutive elements.
fn blank_between(source: &str, previous: &Element, next: &Element) -> bool {
    if previous.opens || next.closes {
        return false;
    }
    if let (Some((a, a_kind)), Some((b, b_kind))) = (previous.item, next.item)
        && a != b
        && a_kind != b_kind
    {
        return true;
    }
    // The user's blank line: only whitespace between the two, with an empty line in it.
    // A comment that moved out of a line is not next to its neighbours in the source, so
    // the text between them is not blank (or the range is reversed) and none is added.
    source
        .get(previous.end..next.start)
        .is_some_and(|gap| gap.trim().is_empty() && gap.matches('\n').count() >= 2)
}

/// A line of output, wrapped when its list is too long.
pub(super) fn render_line(line: &Line) -> Vec<String> {
    let mut first = indent(line.depth);
    first.push_str(&line.head);
    let Some(Tail {
        before,
        list,
        after,
    }) = &line.tail
    else {
        return vec![first];
    };
    let padded = indent(line.depth).len() + line.align;
    while first.chars().count() < padded {
        first.push(' ');
    }
    first.push(' ');
    first.push_str(before);
    wrap(first, list, after)
}

/// Appends `list` to `first`, `, `-separated, filling lines up to the width and
/// continuing under the list's first element; `after` stays with the last element.
fn wrap(first: String, list: &[String], after: &str) -> Vec<String> {
    let column = first.chars().count();
    let mut lines = Vec::new();
    let mut current = first;
    let mut empty = true;
    for (index, element) in list.iter().enumerate() {
        let piece = if index + 1 == list.len() {
            format!("{element}{after}")
        } else {
            format!("{element},")
        };
        if empty {
            empty = false;
        } else if current.chars().count() + 1 + piece.chars().count() <= WIDTH {
            current.push(' ');
        } else {
            lines.push(std::mem::replace(&mut current, " ".repeat(column)));
        }
        current.push_str(&piece);
    }
    if list.is_empty() {
        current.push_str(after);
    }
    lines.push(current);
    lines
}
