//! Turns pest's errors into `FSM001` diagnostics that name what was expected in the
//! words of the language (`` `->` ``, "a name") rather than grammar rule names.

use pest::error::{Error, ErrorVariant, InputLocation};

use crate::ast::Span;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::parse::Rule;

/// Converts an error from parsing `source[offset..]`; spans are made absolute.
pub(crate) fn convert(error: &Error<Rule>, source: &str, offset: usize) -> Diagnostic {
    let at = offset
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((start, _)) => start,
        };
    let found = found_token(source, at);
    let span = Span::new(at, at + found.len());
    let expected = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => expected_list(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let found_text = if found.is_empty() {
        "end of file".to_owned()
    } else {
        format!("`{found}`")
    };
    let message = format!("expected {expected}, found {found_text}");
    let mut diagnostic = Diagnostic::new(
        Code::Syntax,
        message,
        Label::new(span, format!("expected {expected}")),
    );
    if let Some(help) = help_for(found, error) {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

/// The word or character at `at`, for the "found ..." part of the message.
fn found_token(source: &str, at: usize) -> &str {
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

/// Extra guidance for the mistakes people make most.
fn help_for(found: &str, error: &Error<Rule>) -> Option<String> {
    let ErrorVariant::ParsingError { positives, .. } = &error.variant else {
        return None;
    };
    let wants_name = positives.contains(&Rule::ident);
    if wants_name && is_keyword(found) {
        return Some(format!(
            "`{found}` is a keyword; choose another name, such as `{found}_`"
        ));
    }
    if wants_name && found.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Some(format!(
            "names are lowercase with underscores: `{}`",
            to_snake(found)
        ));
    }
    if positives.contains(&Rule::machine_name)
        && found.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Some("a machine's name starts with an uppercase letter, such as `Order`".into());
    }
    if positives.contains(&Rule::time) {
        return Some("times are written `HH:MM`, such as `09:00-17:30`".into());
    }
    None
}

fn is_keyword(word: &str) -> bool {
    use pest::Parser as _;
    crate::parse::FsmParser::parse(Rule::keyword, word).is_ok_and(|p| p.as_str() == word)
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

/// "`a`, `b` or `c`", without repeats, in a stable order.
fn expected_list(positives: &[Rule]) -> String {
    let mut words: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
    words.sort_unstable();
    words.dedup();
    match words.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// How a rule is named in an error message; `None` for rules users never need to hear of.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI | Rule::trailing => "end of file",
        // pest names the outermost rule when nothing inside it got further.
        Rule::next_item => {
            "an item (`state`, `actor`, `reasons`, `calendar`, `on`, `override`, `allow`, `enter`, `exit`) or `}`"
        }
        Rule::ident => "a name",
        Rule::machine_name => "a machine name",
        Rule::kw_machine | Rule::machine_head | Rule::head_start => "`machine`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::arrow => "`->`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::lparen | Rule::paren => "`(`",
        Rule::rparen => "`)`",
        Rule::dash => "`-`",
        Rule::string => "a quoted time zone",
        Rule::time => "a time",
        Rule::date => "a date",
        Rule::day | Rule::day_range | Rule::hours => "a day",
        Rule::kw_state | Rule::state_decl => "`state`",
        Rule::kw_initial | Rule::kw_terminal | Rule::state_flag => "`initial` or `terminal`",
        Rule::kw_actor | Rule::actor_decl => "`actor`",
        Rule::kw_owner | Rule::kw_staff | Rule::actor_role => "`owner` or `staff`",
        Rule::kw_reasons | Rule::reasons_decl => "`reasons`",
        Rule::kw_reason | Rule::reason_flag => "`reason`",
        Rule::kw_calendar | Rule::calendar_decl => "`calendar`",
        Rule::kw_timezone | Rule::timezone => "`timezone`",
        Rule::kw_closed | Rule::closed => "`closed`",
        Rule::kw_on | Rule::transition => "`on`",
        Rule::kw_override | Rule::override_decl => "`override`",
        Rule::kw_by | Rule::by_clause => "`by`",
        Rule::kw_when | Rule::when_clause => "`when`",
        Rule::kw_do | Rule::do_clause => "`do`",
        Rule::kw_undo => "`undo`",
        Rule::kw_emit | Rule::emit_clause => "`emit`",
        Rule::kw_within | Rule::within_clause => "`within`",
        Rule::kw_allow | Rule::allow_decl => "`allow`",
        Rule::kw_in => "`in`",
        Rule::kw_enter | Rule::kw_exit | Rule::hook_kind | Rule::hook => "`enter` or `exit`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not | Rule::not_expr => "`not`",
        Rule::guard | Rule::conj => "a guard",
        Rule::action => "an action",
        Rule::actor_ref => "an actor",
        Rule::state_list => "a state",
        Rule::time_span => "a time",
        _ => return None,
    })
}
