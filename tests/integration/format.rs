//! The formatter on real files: it keeps every machine's meaning and comments, it is
//! idempotent, it leaves the reference machine as it is, and it refuses files that do
//! not parse. A messy hand-written file is snapshotted so that a change of layout shows
//! up in review.

use proptest::prelude::*;
use statemachine_dsl::{check, format, parse};
use tests::{corpus, file_name, machines, read, workspace_root};

/// The syntax tree without its byte spans, which formatting moves, and without the
/// comments' spans (their texts are compared separately, by [`comment_texts`]).
fn shape(source: &str) -> Option<String> {
    let file = parse(source).ok()?;
    Some(erase_spans(&format!("{:?}", file.machine)))
}

/// Replaces every `Span { start: .., end: .. }` of a `Debug` rendering by `Span`; a span
/// has no braces inside, so its end is the next `}`.
fn erase_spans(debug: &str) -> String {
    const SPAN: &str = "Span { start: ";
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find(SPAN) {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        let end = after
            .find('}')
            .expect("a span's Debug rendering ends with `}`");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every comment's text, in order, found by a scanner of its own (not the parser's list,
/// so that the two check each other). The formatter trims whitespace at the ends of
/// lines, inside comments too, so the texts are compared with it trimmed.
fn comment_texts(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut texts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let end = match (bytes[i], bytes.get(i + 1)) {
            (b'"', _) => {
                // A string ends at the next quote or line end; it holds no comment.
                let len = source[i + 1..]
                    .find(['"', '\n'])
                    .map_or(source.len(), |n| n + 1);
                i += len + 1;
                continue;
            }
            (b'/', Some(b'/')) => source[i..].find('\n').map_or(source.len(), |n| i + n),
            (b'/', Some(b'*')) => source[i + 2..]
                .find("*/")
                .map_or(source.len(), |n| i + n + 4),
            _ => {
                i += 1;
                continue;
            }
        };
        let text: Vec<&str> = source[i..end].split('\n').map(str::trim_end).collect();
        texts.push(text.join("\n"));
        i = end;
    }
    texts
}

/// What `check` reports, without positions: formatting moves things, not problems.
fn problems(source: &str) -> Vec<String> {
    check(source)
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code, d.message))
        .collect()
}

/// Formats a file and checks everything the formatter promises about it.
fn assert_formats_faithfully(name: &str, source: &str) {
    let formatted = match format(source) {
        Ok(formatted) => formatted,
        Err(errors) => {
            let parsed = parse(source).expect_err("format fails only on syntax errors");
            assert_eq!(
                errors, parsed,
                "{name}: format must return the parser's errors"
            );
            return;
        }
    };
    assert_eq!(
        shape(&formatted),
        shape(source),
        "{name}: the formatted file means something else:\n{formatted}"
    );
    assert_eq!(
        comment_texts(&formatted),
        comment_texts(source),
        "{name}: comments were lost, added or changed:\n{formatted}"
    );
    assert_eq!(
        problems(&formatted),
        problems(source),
        "{name}: the checks say something else after formatting:\n{formatted}"
    );
    let again = format(&formatted).expect("a formatted file parses");
    assert_eq!(again, formatted, "{name}: formatting is not idempotent");
}

#[test]
fn machines_keep_their_meaning_and_comments() {
    let files = machines();
    assert!(!files.is_empty());
    for path in files {
        assert_formats_faithfully(&file_name(&path), &read(&path));
    }
}

#[test]
fn corpus_files_keep_their_meaning_or_are_refused() {
    for path in corpus() {
        assert_formats_faithfully(&file_name(&path), &read(&path));
    }
}

#[test]
fn the_reference_machine_is_already_formatted() {
    let source = read(&workspace_root().join("machines/order.fsm"));
    assert_eq!(format(&source).expect("order.fsm parses"), source);
}

#[test]
fn a_broken_file_is_refused_with_the_parsers_errors() {
    let source =
        "machine Order {\n    state pending initial\n    on pay: pending paid { by system }\n}\n";
    let errors = format(source).expect_err("the arrow is missing");
    assert_eq!(Err(errors), parse(source).map(|_| ()));
}

/// Odd indentation, several items on one line, items split over lines, comments of
/// every kind in every place.
const MESSY: &str = r#"// A door, written in a hurry.
machine   Door{   // the header
  state shut initial state open   // two on one line
	state broken_beyond_repair
        terminal
  /* people */ actor user actor admin staff
actor robot owner



reasons jammed,vandalism,   wear_and_tear,another_reason_code,yet_another_reason_code, and_more
calendar workshop{timezone "Europe/Paris" mon-fri 09:00-12:00,13:00-17:00
 sat 10:00-12:00 // saturdays
   closed 2026-01-01,2026-12-25}
on open : shut->open{by user when ( has_key or admin_present ) and not alarm_on // why
do unlock undo lock , log emit opened}
on close: open -> shut { by user, admin(reason) /* inner */ within workshop }


override repair: broken_beyond_repair -> shut { by admin(reason) }
on kick: open, /* which */ shut -> broken_beyond_repair { // kick
  by user
  // before emit

  emit kicked
  // end of kick
}
enter broken_beyond_repair{emit broken}exit open { do a, b }
enter open { do a emit b }
allow paint in shut, open allow oil in open
allow
  replace_hinges in shut, open, broken_beyond_repair
} // after
/* the
   end */
"#;

#[test]
fn a_messy_file() {
    let formatted = format(MESSY).expect("the messy file parses");
    assert_formats_faithfully("messy", MESSY);
    insta::assert_snapshot!(formatted);
}

/// Places in `order.fsm` where whitespace or a comment may go: every run of whitespace
/// (with what it holds) and the empty gaps next to the punctuation glued to a name.
fn gaps(source: &str) -> Vec<(usize, usize)> {
    let bytes = source.as_bytes();
    let mut gaps = vec![(0, 0)];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            let start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            gaps.push((start, i));
            continue;
        }
        let glued = matches!(bytes[i], b',' | b'(' | b')')
            || (bytes[i] == b':' && bytes.get(i + 1) == Some(&b' '));
        let after_paren = i > 0 && bytes[i - 1] == b'(';
        if (glued || after_paren) && i > 0 && !bytes[i - 1].is_ascii_whitespace() {
            gaps.push((i, i));
        }
        i += 1;
    }
    gaps
}

/// Builds the text that replaces a gap from `choices`: blanks, line ends and numbered
/// comments. A gap that held a blank line gets one; any other gap never does (a line
/// end is dropped where it would make one), since blank lines are the user's to keep.
fn filler(original: &str, choices: &[u8], next_comment: &mut usize) -> String {
    let had_blank_line = original.matches('\n').count() >= 2;
    let mut out = String::new();
    // Whether only blanks follow the last line end, where another would make a blank line.
    let mut at_line_start = false;
    for (n, choice) in choices.iter().enumerate() {
        if had_blank_line && n == choices.len() / 2 {
            out.push_str("\n\n");
            at_line_start = true;
        }
        match choice % 5 {
            0 => out.push(' '),
            1 => out.push('\t'),
            2 if !at_line_start => {
                out.push('\n');
                at_line_start = true;
            }
            2 => out.push(' '),
            3 => {
                *next_comment += 1;
                out.push_str(&format!("/*c{next_comment}*/"));
                at_line_start = false;
            }
            _ => {
                *next_comment += 1;
                out.push_str(&format!("//c{next_comment}\n"));
                at_line_start = true;
            }
        }
    }
    if had_blank_line && !out.contains("\n\n") {
        out.push_str("\n\n");
    }
    if out.is_empty() && !original.is_empty() {
        out.push(' ');
    }
    out
}

/// The formatted text without the inserted comments: they are cut out, lines left
/// empty by that are dropped, runs of blank lines become one, and the file starts and
/// ends without one.
fn without_inserted_comments(formatted: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in formatted.lines() {
        let mut kept = line.to_owned();
        while let Some(at) = kept.find("/*c") {
            let end = kept[at..].find("*/").map_or(kept.len(), |n| at + n + 2);
            kept.replace_range(at..end, "");
        }
        if let Some(at) = kept.find("//c") {
            kept.truncate(at);
        }
        let kept = kept.trim_end().to_owned();
        let emptied = kept.is_empty() && !line.trim().is_empty();
        let repeated_blank = kept.is_empty() && lines.last().is_none_or(String::is_empty);
        if !emptied && !repeated_blank {
            lines.push(kept);
        }
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(tests::proptest_config(128))]

    /// Rearranging the whitespace of `order.fsm` and sprinkling comments into it gives
    /// `order.fsm` back, plus the comments.
    #[test]
    fn layout_does_not_depend_on_whitespace_or_comments(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(0u8..5, 1..5)), 0..16)
    ) {
        let order = read(&workspace_root().join("machines/order.fsm"));
        let gaps = gaps(&order);
        let mut fillers: Vec<Option<Vec<u8>>> = vec![None; gaps.len()];
        for (index, choices) in edits {
            fillers[index.index(gaps.len())] = Some(choices);
        }
        let mut source = String::new();
        let mut next_comment = 0;
        let mut pos = 0;
        for (&(start, end), choices) in gaps.iter().zip(&fillers) {
            source.push_str(&order[pos..start]);
            match choices {
                Some(choices) => source.push_str(&filler(&order[start..end], choices, &mut next_comment)),
                None => source.push_str(&order[start..end]),
            }
            pos = end;
        }
        source.push_str(&order[pos..]);

        let formatted = format(&source).map_err(|e| TestCaseError::fail(format!("{source}\n{e:?}")))?;
        prop_assert_eq!(without_inserted_comments(&formatted), order.clone(), "{}", source);
        prop_assert_eq!(comment_texts(&formatted), comment_texts(&source));
        prop_assert_eq!(format(&formatted).ok(), Some(formatted.clone()));
    }
}
