//! Turns pest's errors into `FSM001` diagnostics that name what was expected in the
//! words of the language (`` `->` ``, "a name") rather than grammar rule names, and
//! that explain the mistakes people make most (a keyword used as a name, a block left
//! open, a clause from another language) in a help line.

use pest::error::{Error, ErrorVariant, InputLocation};

use crate::ast::Span;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::parse::Rule;

/// The keywords that start an item of the machine.
pub(crate) const ITEM_KEYWORDS: &[&str] = &[
    "state", "actor", "reasons", "calendar", "on", "override", "allow", "enter", "exit",
];

/// The keywords that start a clause inside a transition's or a hook's block.
const CLAUSE_KEYWORDS: &[&str] = &["by", "when", "do", "emit", "within"];

/// Where an error was found, relative to the parsed slice.
pub(crate) fn position(error: &Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((start, _)) => start,
    }
}

/// Whether the parser wanted the `machine` keyword (the file has no header).
pub(crate) fn expects_machine(error: &Error<Rule>) -> bool {
    matches!(&error.variant, ErrorVariant::ParsingError { positives, .. }
        if positives.iter().any(|r| matches!(r, Rule::kw_machine | Rule::machine_head | Rule::head_start)))
}

/// Converts an error from parsing `source[offset..]`; spans are made absolute.
/// `open_brace` is the innermost `{` still open where the error was found, if any: it is
/// pointed at when the error is a block that was never closed.
pub(crate) fn convert(
    error: &Error<Rule>,
    source: &str,
    offset: usize,
    open_brace: Option<usize>,
) -> Diagnostic {
    let mut at = offset + position(error);
    let found = found_token(source, at);
    let positives: &[Rule] = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { .. } => &[],
    };
    if found.is_empty() {
        // The end of the file is shown right after the last thing written, so that the
        // headline's line and column are those of the caret in the snippet.
        at = source.get(..at).map_or(at, |s| s.trim_end().len());
    }
    let span = Span::new(at, at + found.len());
    if found == "/" && source.get(at..).is_some_and(|rest| rest.starts_with("/*")) {
        return Diagnostic::new(
            Code::Syntax,
            "block comment is never closed",
            Label::new(Span::new(at, at + 2), "this comment has no `*/`"),
        )
        .with_help("close the comment with `*/`; everything after `/*` is part of it until then");
    }
    if found == "\"" {
        // A string ends at the end of its line (time zones hold no newline), so the
        // parser only sees a quote it cannot use; what is wrong is the missing end.
        let line_end = source[at + 1..]
            .find('\n')
            .map_or(source.len(), |i| at + 1 + i);
        if !source[at + 1..line_end].contains('"') {
            return Diagnostic::new(
                Code::Syntax,
                "string is never closed",
                Label::new(Span::new(at, line_end), "this string has no closing `\"`"),
            )
            .with_help("close it on the same line, such as `timezone \"Europe/Berlin\"`");
        }
    }
    // pest gives up without expecting anything when its stack guard stops a very deep
    // nesting; the parser's own limit reports shallower ones the same way.
    if positives.is_empty() && matches!(found, "(" | "not") {
        return too_deep(span);
    }
    let wants_brace = positives.contains(&Rule::rbrace);
    let starts_item = ITEM_KEYWORDS.contains(&found) && at_line_start(source, at);
    // An item keyword cannot appear inside a block, so a block that is still open when
    // one comes (or when the file ends) was meant to be closed there: saying only that
    // `}` was expected is clearer than listing every clause that could also follow.
    if wants_brace && (found.is_empty() || (starts_item && open_brace.is_some())) {
        let found_text = found_text(found);
        let mut d = Diagnostic::new(
            Code::Syntax,
            format!("expected `}}`, found {found_text}"),
            Label::new(
                span,
                if found.is_empty() {
                    "expected `}` here".to_owned()
                } else {
                    format!("expected `}}` before this `{found}`")
                },
            ),
        );
        if let Some(brace) = open_brace {
            d = d.with_secondary(Label::new(
                Span::new(brace, brace + 1),
                "this block is never closed",
            ));
        }
        return d.with_help("close every block with `}`");
    }
    if found == "," && at_item(positives) {
        // A list (`reasons a, b,`) parsed up to its last name, so the parser only sees
        // a comma where an item should start; the mistake is the comma, or the name
        // missing after it.
        let rest = source.get(at + 1..).unwrap_or("");
        let next = found_token(source, at + 1 + (rest.len() - rest.trim_start().len()));
        return Diagnostic::new(
            Code::Syntax,
            format!("expected a name after `,`, found {}", found_text(next)),
            Label::new(span, "no name follows this `,`"),
        )
        .with_help("remove the trailing `,`, or add the missing name after it");
    }
    let expected = expected_list(positives);
    let found_text = found_text(found);
    let message = format!("expected {expected}, found {found_text}");
    // Without a more specific hint, say the two ways out of the error.
    let help = help_for(source, at, found, positives).unwrap_or_else(|| match found {
        "" => format!("the file ends too early: add {expected}"),
        _ => format!("write {expected} here, or remove `{found}` if it does not belong"),
    });
    Diagnostic::new(
        Code::Syntax,
        message,
        Label::new(span, format!("expected {expected}")),
    )
    .with_help(help)
}

fn found_text(found: &str) -> String {
    if found.is_empty() {
        "end of file".to_owned()
    } else {
        format!("`{found}`")
    }
}

/// A guard nested deeper than the parser accepts.
pub(crate) fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::Syntax,
        format!(
            "guard is nested more than {} levels deep",
            crate::parse::MAX_GUARD_DEPTH
        ),
        Label::new(span, "too deep from here on"),
    )
    .with_help("give the inner condition a name of its own and use that guard here instead")
}

/// The word or character at `at`, for the "found ..." part of the message.
pub(crate) fn found_token(source: &str, at: usize) -> &str {
    let rest = source.get(at..).unwrap_or("");
    let word = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    if word > 0 {
        return &rest[..word];
    }
    if rest.starts_with("->") {
        return &rest[..2];
    }
    rest.chars().next().map_or("", |c| &rest[..c.len_utf8()])
}

/// Whether only blanks precede `at` on its line.
pub(crate) fn at_line_start(source: &str, at: usize) -> bool {
    source.get(..at).is_some_and(|before| {
        before
            .rsplit('\n')
            .next()
            .is_some_and(|l| l.trim().is_empty())
    })
}

/// The token before `at`, skipping blanks and `//` comments: `and` in `when a and`.
fn previous_token(source: &str, at: usize) -> &str {
    let mut before = source.get(..at).unwrap_or("");
    loop {
        let trimmed = before.trim_end();
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        // A line comment on that line hides what follows it; a `//` inside a string is
        // not considered, since strings only hold time zones.
        match trimmed[line_start..].find("//") {
            Some(comment) => before = &trimmed[..line_start + comment],
            None => {
                before = trimmed;
                break;
            }
        }
    }
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    if start < before.len() {
        return &before[start..];
    }
    if before.ends_with("->") {
        return &before[before.len() - 2..];
    }
    before
        .char_indices()
        .next_back()
        .map_or("", |(i, _)| &before[i..])
}

/// Extra guidance for the mistakes people make most.
fn help_for(source: &str, at: usize, found: &str, positives: &[Rule]) -> Option<String> {
    let wants_name = positives.contains(&Rule::ident);
    let previous = previous_token(source, at);
    // `when a and` followed by `do ...` on the next line: the keyword is not a name
    // that was chosen badly, it is the next clause, and the line before is unfinished.
    let starts_next = CLAUSE_KEYWORDS.contains(&found) || ITEM_KEYWORDS.contains(&found);
    if (wants_name || found.is_empty() || found == "}")
        && (starts_next || found.is_empty() || found == "}")
        && at_line_start(source, at)
        && is_operator(previous)
    {
        let what = if positives.contains(&Rule::guard) || matches!(previous, "and" | "or" | "not") {
            "a guard"
        } else {
            "a name"
        };
        return Some(format!(
            "`{previous}` at the end of the line before must be followed by {what}"
        ));
    }
    if wants_name && is_keyword(found) {
        return Some(format!(
            "`{found}` is a keyword and cannot be a name; choose another, such as `{}`",
            alternative_to(found)
        ));
    }
    if wants_name && found.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Some(format!(
            "names are lowercase with underscores: `{}`",
            to_snake(found)
        ));
    }
    if positives.contains(&Rule::kw_reason) {
        return Some(
            "`(reason)` marks an actor who must give one of the declared reason codes: `by support(reason)`"
                .into(),
        );
    }
    if positives.contains(&Rule::colon) {
        return Some(
            "an event is followed by `:` and its source states: `on cancel: pending -> cancelled`"
                .into(),
        );
    }
    if positives.contains(&Rule::machine_name)
        && found.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Some("a machine's name starts with an uppercase letter, such as `Order`".into());
    }
    if positives.contains(&Rule::kw_timezone) {
        return Some("a calendar starts with its time zone: `timezone \"Europe/Berlin\"`".into());
    }
    if positives.contains(&Rule::time) {
        return Some("times are written `HH:MM`, such as `09:00-17:30`".into());
    }
    if positives.contains(&Rule::arrow) && positives.contains(&Rule::comma) {
        return Some(
            "source states are separated by `,` and followed by `->` and the target: `on ship: paid, processing -> shipped`"
                .into(),
        );
    }
    confusion(found, positives)
}

/// Words borrowed from other languages, and what this one calls them.
fn confusion(found: &str, positives: &[Rule]) -> Option<String> {
    let in_block = positives.contains(&Rule::kw_by) || positives.contains(&Rule::by_clause);
    let at_item = at_item(positives);
    let help = match found {
        "by" | "when" | "do" | "emit" | "within" if at_item => {
            "a clause belongs inside the `{ ... }` of an `on`, an `override` or a hook; is the line that opens the block missing?"
        }
        "if" | "where" | "guard" | "unless" | "requires" if in_block => {
            "conditions are written `when guard_name`, such as `when payment_authorized`"
        }
        "then" | "run" | "action" | "actions" | "call" if in_block => {
            "actions are written `do action_name`, such as `do reserve_inventory`"
        }
        "notify" | "send" | "publish" if in_block => {
            "notifications are written `emit notification_name`, such as `emit order_shipped`"
        }
        "actors" | "who" | "allowed" if in_block => {
            "who may fire a transition is written `by actor`, such as `by customer, system`"
        }
        "final" | "end" | "terminating" | "start" | "begin" | "first" if at_item => {
            "a state is marked `initial` or `terminal` right after its name: `state delivered terminal`"
        }
        "event" | "transition" if at_item => {
            "transitions are written `on event: source -> target { by actor }`"
        }
        _ if in_block && found.starts_with(|c: char| c.is_ascii_lowercase()) => {
            "a block holds the clauses `by`, `when`, `do`, `emit` and `within`"
        }
        _ if at_item && found.starts_with(|c: char| c.is_ascii_lowercase()) => {
            "a machine holds `state`, `actor`, `reasons`, `calendar`, `on`, `override`, `allow`, `enter` and `exit` items"
        }
        _ => return None,
    };
    Some(help.to_owned())
}

/// Whether the parser wanted the next item of the machine.
fn at_item(positives: &[Rule]) -> bool {
    positives
        .iter()
        .any(|r| matches!(r, Rule::next_item | Rule::kw_state | Rule::state_decl))
}

/// Tokens after which something more must come.
fn is_operator(token: &str) -> bool {
    matches!(
        token,
        "and"
            | "or"
            | "not"
            | ","
            | "when"
            | "by"
            | "do"
            | "emit"
            | "undo"
            | "within"
            | "in"
            | ":"
            | "->"
            | "("
    )
}

fn is_keyword(word: &str) -> bool {
    use pest::Parser as _;
    crate::parse::FsmParser::parse(Rule::keyword, word).is_ok_and(|p| p.as_str() == word)
}

/// A name close to a keyword that is not one.
fn alternative_to(keyword: &str) -> String {
    match keyword {
        "closed" => "closed_by_customer".to_owned(),
        "state" => "order_state".to_owned(),
        "reason" | "reasons" => "reason_code".to_owned(),
        "on" => "on_hold".to_owned(),
        "exit" => "exited".to_owned(),
        "enter" => "entered".to_owned(),
        "in" => "inbound".to_owned(),
        other => format!("{other}_"),
    }
}

fn to_snake(word: &str) -> String {
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// "`a`, `b` or `c`", without repeats: descriptions ("a name") first, then tokens in
/// alphabetical order, and `}` last since it ends what could come before it.
fn expected_list(positives: &[Rule]) -> String {
    let mut words: Vec<&str> = positives
        .iter()
        .flat_map(|r| describe(*r))
        .copied()
        .collect();
    words.sort_unstable_by_key(|w| (w.starts_with('`'), *w == "`}`", *w));
    words.dedup();
    // What can start a guard is a name, `(` or `not`: that is "a guard", as it is
    // called where pest names the rule itself.
    if ["a name", "`(`", "`not`"].iter().all(|w| words.contains(w)) {
        words.retain(|w| !matches!(*w, "a name" | "`(`" | "`not`"));
        words.insert(0, "a guard");
    }
    match words.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// How a rule is named in an error message; nothing for rules users never need to hear of.
fn describe(rule: Rule) -> &'static [&'static str] {
    match rule {
        Rule::EOI | Rule::trailing => &["end of file"],
        // pest names the outermost rule when nothing inside it got further.
        Rule::next_item => &[
            "`state`",
            "`actor`",
            "`reasons`",
            "`calendar`",
            "`on`",
            "`override`",
            "`allow`",
            "`enter`",
            "`exit`",
            "`}`",
        ],
        Rule::ident => &["a name"],
        Rule::machine_name => &["a machine name"],
        Rule::kw_machine | Rule::machine_head | Rule::head_start => &["`machine`"],
        Rule::lbrace => &["`{`"],
        Rule::rbrace => &["`}`"],
        Rule::arrow => &["`->`"],
        Rule::comma => &["`,`"],
        Rule::colon => &["`:`"],
        Rule::lparen | Rule::paren => &["`(`"],
        Rule::rparen => &["`)`"],
        Rule::dash => &["`-`"],
        Rule::string => &["a quoted time zone"],
        Rule::time | Rule::time_span => &["a time"],
        Rule::date => &["a date"],
        Rule::day | Rule::day_range | Rule::hours => &["a day"],
        Rule::kw_state | Rule::state_decl => &["`state`"],
        Rule::kw_initial => &["`initial`"],
        Rule::kw_terminal => &["`terminal`"],
        Rule::state_flag => &["`initial`", "`terminal`"],
        Rule::kw_actor | Rule::actor_decl => &["`actor`"],
        Rule::kw_owner => &["`owner`"],
        Rule::kw_staff => &["`staff`"],
        Rule::actor_role => &["`owner`", "`staff`"],
        Rule::kw_reasons | Rule::reasons_decl => &["`reasons`"],
        Rule::kw_reason | Rule::reason_flag => &["`reason`"],
        Rule::kw_calendar | Rule::calendar_decl => &["`calendar`"],
        Rule::kw_timezone | Rule::timezone => &["`timezone`"],
        Rule::kw_closed | Rule::closed => &["`closed`"],
        Rule::kw_on | Rule::transition => &["`on`"],
        Rule::kw_override | Rule::override_decl => &["`override`"],
        Rule::kw_by | Rule::by_clause => &["`by`"],
        Rule::kw_when | Rule::when_clause => &["`when`"],
        Rule::kw_do | Rule::do_clause => &["`do`"],
        Rule::kw_undo => &["`undo`"],
        Rule::kw_emit | Rule::emit_clause => &["`emit`"],
        Rule::kw_within | Rule::within_clause => &["`within`"],
        Rule::kw_allow | Rule::allow_decl => &["`allow`"],
        Rule::kw_in => &["`in`"],
        Rule::kw_enter => &["`enter`"],
        Rule::kw_exit => &["`exit`"],
        Rule::hook_kind | Rule::hook => &["`enter`", "`exit`"],
        Rule::kw_and => &["`and`"],
        Rule::kw_or => &["`or`"],
        Rule::kw_not | Rule::not_expr => &["`not`"],
        Rule::guard | Rule::conj => &["a guard"],
        Rule::action => &["an action"],
        Rule::actor_ref => &["an actor"],
        Rule::state_list => &["a state"],
        _ => &[],
    }
}
