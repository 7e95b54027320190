//! Properties of the whole pipeline on inputs nobody wrote on purpose: random text,
//! token soup, and the real machines with random damage.
//!
//! The library promises that nothing in it panics on any input and that every
//! diagnostic points into the text it came from; these properties hold it to that.
//! Failures are not persisted to files: a failure found here is to be kept as a plain
//! regression test at the end of this module instead.

use proptest::prelude::*;
use proptest::sample::Index;
use statemachine_dsl::ast::Span;
use statemachine_dsl::{Code, SourceFile, check, format, parse, to_dot, to_mermaid};
use tests::{file_name, machines, read};

/// Every fixed token of the language, plus a few near misses (a keyword with a suffix,
/// an uppercase name, unterminated literals) that sit on the edge of the lexical rules.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "machine", "state", "initial", "terminal", "actor", "owner", "staff", "reasons",
    "reason", "calendar", "timezone", "closed", "on", "override", "by", "when", "do",
    "undo", "emit", "within", "allow", "in", "enter", "exit", "and", "or", "not",
    "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    "{", "}", "(", ")", ",", ":", "->", "-", ">",
    "Order", "M", "pending", "paid", "a", "b", "x_1", "states", "on_", "Pending", "_x",
    "09:00", "24:00", "25:61", "9:5", "2026-12-25", "2026-02-30", "1-2-3",
    "\"Europe/Berlin\"", "\"Mars/Olympus\"", "\"\"", "\"unterminated",
    "// comment\n", "//", "/* block */", "/* unterminated", "*/",
    "\n", "\r\n", "\t", "é", "∅", "\u{0}", "\u{FEFF}", "🦀", "@", ";", "\\",
];

/// One token: a fixed one, or a generated name, time, date or string.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(TOKENS).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9_]{0,8}",
        1 => "[0-9]{1,3}:[0-9]{1,3}",
        1 => "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,3}",
        1 => "\"[^\"\n]{0,12}\"",
    ]
}

/// Tokens joined by blanks, or by nothing, so that tokens also run into each other.
fn token_soup(max_tokens: usize) -> impl Strategy<Value = String> {
    let separator = prop::sample::select(&[" ", " ", "\n", "", "\t"][..]);
    prop::collection::vec((token(), separator), 0..max_tokens).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(token, sep)| [token, sep.to_owned()])
            .collect()
    })
}

/// Token soup inside `machine M { ... }`, so that most inputs get past the header and
/// exercise the item parser, its error recovery, and (now and then) the checks.
fn machine_soup() -> impl Strategy<Value = String> {
    token_soup(60).prop_map(|body| format!("machine M {{\n{body}\n}}\n"))
}

/// Runs everything that takes text or a model: checking, formatting, both renderings
/// of the diagnostics and both graph exports. Panics are the failure being looked for.
fn exercise(name: &str, source: &str) -> statemachine_dsl::Validated {
    let checked = check(source);
    // The formatter's own tests cover faithful layout of real files; on damaged input
    // it is enough that what it accepts it prints as a file that it leaves alone.
    if let Ok(formatted) = format(source) {
        assert!(
            parse(&formatted).is_ok(),
            "format broke the syntax of {source:?}: {formatted:?}"
        );
        let again = format(&formatted);
        assert!(
            again.as_ref() == Ok(&formatted),
            "format is not idempotent on {source:?}: {formatted:?}, then {again:?}"
        );
    }
    let file = SourceFile::new(name, source);
    let _ = file.render_all(&checked.diagnostics);
    for diagnostic in &checked.diagnostics {
        let json = serde_json::to_string(&file.to_json(diagnostic));
        assert!(json.is_ok(), "a diagnostic does not serialize: {json:?}");
    }
    if let Some(model) = &checked.model {
        let _ = to_dot(model);
        let _ = to_mermaid(model);
    }
    checked
}

/// A span is usable when it lies within the text and both ends are on char boundaries.
fn span_problem(source: &str, span: Span) -> Option<String> {
    let Span { start, end } = span;
    if start > end || end > source.len() {
        return Some(format!(
            "{start}..{end} is not within the {} bytes of the source",
            source.len()
        ));
    }
    if !source.is_char_boundary(start) || !source.is_char_boundary(end) {
        return Some(format!("{start}..{end} splits a character"));
    }
    None
}

/// Asserts that every primary and secondary span of every diagnostic is usable.
fn assert_spans_valid(source: &str, checked: &statemachine_dsl::Validated) {
    for d in &checked.diagnostics {
        let labels = std::iter::once(&d.primary).chain(&d.secondary);
        for label in labels {
            if let Some(problem) = span_problem(source, label.span) {
                panic!(
                    "{}: {} (label `{}`) in {source:?}",
                    d.code, problem, label.message
                );
            }
        }
    }
}

/// What `check` owes a file with a syntax error: at least one `FSM001`, and no model.
fn assert_syntax_error_reported(source: &str, checked: &statemachine_dsl::Validated) {
    assert!(checked.model.is_none(), "a model for a syntax error");
    assert!(
        checked.diagnostics.iter().any(|d| d.code == Code::Syntax),
        "no FSM001 for a syntax error in {source:?}: {:?}",
        checked.diagnostics
    );
}

/// If `parse` fails, the failure is a non-empty list of syntax errors and `check`
/// reports it; if it succeeds, `check` reports no syntax error.
fn assert_parse_and_check_agree(source: &str, checked: &statemachine_dsl::Validated) {
    match parse(source) {
        Err(errors) => {
            assert!(!errors.is_empty(), "parse failed without a diagnostic");
            assert!(
                errors.iter().all(|d| d.code == Code::Syntax),
                "parse failed with a diagnostic that is not FSM001: {errors:?}"
            );
            assert_syntax_error_reported(source, checked);
        }
        Ok(_) => assert!(
            checked.diagnostics.iter().all(|d| d.code != Code::Syntax),
            "parse succeeded but check reports FSM001: {:?}",
            checked.diagnostics
        ),
    }
}

/// The machines of `machines/`, read once.
fn sources() -> &'static [(String, String)] {
    static SOURCES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    SOURCES.get_or_init(|| {
        machines()
            .iter()
            .map(|path| (file_name(path), read(path)))
            .collect()
    })
}

fn order_fsm() -> &'static str {
    sources()
        .iter()
        .find(|(name, _)| name == "order.fsm")
        .map(|(_, text)| text.as_str())
        .expect("machines/order.fsm exists")
}

/// A char boundary of `text` chosen by `index`, from 0 to `text.len()` inclusive.
fn boundary(text: &str, index: Index) -> usize {
    let mut at = index.index(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One kind of damage a file may take in an editor.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteRange(Index, usize),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Insert(Index, String),
    Truncate(Index),
    /// Deletes a whole line, such as a clause or a state.
    DeleteLine(Index),
    /// Replaces a word with another word of the same file.
    ReplaceWord(Index, Index),
    /// Replaces a name with another name of the same file: an edit that keeps the
    /// syntax and breaks the meaning, so that it reaches the checks.
    ReplaceName(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..40usize).prop_map(|(at, len)| Mutation::DeleteRange(at, len)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), token()).prop_map(|(at, token)| Mutation::Insert(at, token)),
        any::<Index>().prop_map(Mutation::Truncate),
        any::<Index>().prop_map(Mutation::DeleteLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReplaceWord(a, b)),
    ]
}

/// Damage that mostly keeps the syntax (whole lines moved, copied or dropped, a word
/// swapped for another of the file), so that most inputs reach the checks and the
/// graph export instead of stopping at a syntax error.
fn edit() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReplaceName(a, b)),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
    ]
}

impl Mutation {
    fn apply(&self, text: &str) -> String {
        match self {
            Mutation::DeleteRange(at, len) => {
                let start = boundary(text, *at);
                let mut end = (start + len).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                format!("{}{}", &text[..start], &text[end..])
            }
            Mutation::DuplicateLine(at) => {
                let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let i = at.index(lines.len());
                    lines.insert(i, lines[i]);
                }
                lines.concat()
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let (i, j) = (a.index(lines.len()), b.index(lines.len()));
                    lines.swap(i, j);
                }
                lines.concat()
            }
            Mutation::Insert(at, token) => {
                let at = boundary(text, *at);
                format!("{}{token}{}", &text[..at], &text[at..])
            }
            Mutation::Truncate(at) => text[..boundary(text, *at)].to_owned(),
            Mutation::DeleteLine(at) => {
                let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    lines.remove(at.index(lines.len()));
                }
                lines.concat()
            }
            Mutation::ReplaceWord(target, replacement) => {
                replace(text, &words(text), *target, *replacement)
            }
            Mutation::ReplaceName(target, replacement) => {
                let names: Vec<_> = words(text)
                    .into_iter()
                    .filter(|w| is_name(&text[w.clone()]))
                    .collect();
                replace(text, &names, *target, *replacement)
            }
        }
    }
}

/// `text` with one of `words` replaced by another one of them.
fn replace(text: &str, words: &[std::ops::Range<usize>], target: Index, by: Index) -> String {
    if words.is_empty() {
        return text.to_owned();
    }
    let target = words[target.index(words.len())].clone();
    let replacement = &text[words[by.index(words.len())].clone()];
    format!(
        "{}{replacement}{}",
        &text[..target.start],
        &text[target.end..]
    )
}

/// Whether a word is a name (a state, event, actor... but no keyword or day).
fn is_name(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "machine", "state", "initial", "terminal", "actor", "owner", "staff", "reasons", "reason",
        "calendar", "timezone", "closed", "on", "override", "by", "when", "do", "undo", "emit",
        "within", "allow", "in", "enter", "exit", "and", "or", "not", "mon", "tue", "wed", "thu",
        "fri", "sat", "sun",
    ];
    word.starts_with(|c: char| c.is_ascii_lowercase()) && !RESERVED.contains(&word)
}

/// The byte ranges of the words of `text`: names, keywords, numbers.
fn words(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        let in_word = c.is_alphanumeric() || c == '_';
        match (start, in_word) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                words.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// Where `text` may be cut off and stay broken: anywhere before its last `}`.
fn before_last_brace(text: &str, index: Index) -> usize {
    let last = text.rfind('}').expect("a machine ends in `}`");
    boundary(&text[..last], index)
}

/// The character boundaries of `text` outside its strings and comments, where a
/// character that is no token of the language is a syntax error whatever surrounds it.
fn outside_strings(text: &str) -> Vec<usize> {
    #[derive(PartialEq)]
    enum In {
        Code,
        String,
        LineComment,
        /// A block comment that opened at this offset.
        BlockComment(usize),
    }
    let mut allowed = Vec::new();
    let mut state = In::Code;
    for (i, c) in text.char_indices() {
        // Leave a comment that ended just before `i`.
        let ended = match state {
            In::LineComment => text[..i].ends_with('\n'),
            In::BlockComment(start) => i >= start + 4 && text[..i].ends_with("*/"),
            In::Code | In::String => false,
        };
        if ended {
            state = In::Code;
        }
        let rest = &text[i..];
        state = match state {
            In::Code if rest.starts_with("//") => In::LineComment,
            In::Code if rest.starts_with("/*") => In::BlockComment(i),
            In::Code => {
                allowed.push(i);
                if c == '"' { In::String } else { In::Code }
            }
            // The closing quote ends the string; the offset after it is code again.
            In::String if c == '"' => In::Code,
            other => other,
        };
    }
    if state == In::Code {
        allowed.push(text.len());
    }
    allowed
}

proptest! {
    #![proptest_config(tests::proptest_config(256))]

    /// (a) Any unicode text at all.
    #[test]
    fn any_text_never_panics(source in any::<String>()) {
        let checked = exercise("any.fsm", &source);
        assert_spans_valid(&source, &checked);
        assert_parse_and_check_agree(&source, &checked);
    }

    /// (a) Text made of the language's own tokens, the likeliest to reach deep code.
    #[test]
    fn token_soup_never_panics(source in token_soup(80)) {
        let checked = exercise("soup.fsm", &source);
        assert_spans_valid(&source, &checked);
        assert_parse_and_check_agree(&source, &checked);
    }

    /// (a) Token soup inside a machine's braces, to get past the header.
    #[test]
    fn machine_soup_never_panics(source in machine_soup()) {
        let checked = exercise("soup.fsm", &source);
        assert_spans_valid(&source, &checked);
        assert_parse_and_check_agree(&source, &checked);
    }

    /// (b) A real machine with one to three mutations of any kind.
    #[test]
    fn damaged_machines_never_panic_and_spans_stay_in_the_text(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let machines = sources();
        let (name, original) = &machines[which.index(machines.len())];
        let source = mutations.iter().fold(original.clone(), |text, m| m.apply(&text));
        let checked = exercise(name, &source);
        assert_spans_valid(&source, &checked);
        assert_parse_and_check_agree(&source, &checked);
    }

    /// (b) A real machine with edits that keep most of the syntax, to reach the checks.
    #[test]
    fn edited_machines_never_panic_and_spans_stay_in_the_text(
        which in any::<Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let machines = sources();
        let (name, original) = &machines[which.index(machines.len())];
        let source = edits.iter().fold(original.clone(), |text, m| m.apply(&text));
        let checked = exercise(name, &source);
        assert_spans_valid(&source, &checked);
        assert_parse_and_check_agree(&source, &checked);
    }

    /// (c) A character that is no token, put anywhere outside a string, is a syntax error.
    #[test]
    fn a_stray_character_is_a_syntax_error(
        at in any::<Index>(),
        stray in prop::sample::select(&["@", "#", ";", "$", "[", "]", "é", "🦀", "\u{0}", "\""][..]),
    ) {
        let order = order_fsm();
        let at = *at.get(&outside_strings(order));
        let source = format!("{}{stray}{}", &order[..at], &order[at..]);
        let checked = exercise("order.fsm", &source);
        assert_spans_valid(&source, &checked);
        assert_syntax_error_reported(&source, &checked);
    }

    /// (c) A machine cut off before its closing brace is a syntax error.
    #[test]
    fn a_truncated_machine_is_a_syntax_error(at in any::<Index>()) {
        let order = order_fsm();
        let source = &order[..before_last_brace(order, at)];
        let checked = exercise("order.fsm", source);
        assert_spans_valid(source, &checked);
        assert_syntax_error_reported(source, &checked);
    }
}

/// The mutations start from files that are clean, so that what the properties find is
/// caused by the damage.
#[test]
fn the_undamaged_machines_are_clean() {
    for (name, text) in sources() {
        let checked = exercise(name, text);
        assert!(checked.model.is_some(), "{name}: {:?}", checked.diagnostics);
    }
}

/// The inputs at the edges of the strategies, run every time.
#[test]
fn edge_inputs_never_panic() {
    for source in [
        "",
        "machine",
        "machine M",
        "machine M {",
        "machine M {}",
        "machine M { state",
        "}",
        "{",
        "\u{FEFF}machine M {}",
        "machine M { state a initial } trailing",
        "machine M {\nstate é\n}",
        "machine M { /* unterminated",
        "machine M { calendar c { timezone \"",
        "machine M {\n    state a initial\n    on e: a -> a { by x(reason) }\n}",
    ] {
        let checked = exercise("edge.fsm", source);
        assert_spans_valid(source, &checked);
        assert_parse_and_check_agree(source, &checked);
    }
}

/// The stray-character property relies on this helper never choosing a place inside a
/// string or a comment, where any character is allowed.
#[test]
fn outside_strings_skips_strings_and_comments() {
    let text = "a \"b\" // c\nd /* e */ f";
    let chars: String = outside_strings(text)
        .iter()
        .map(|&i| text[i..].chars().next().unwrap_or('$'))
        .collect();
    assert_eq!(chars, "a \" d  f$");
}
