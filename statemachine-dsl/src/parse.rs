//! Source text to syntax tree.
//!
//! The grammar (`grammar.pest`) is driven one item at a time: when an item does not
//! parse, the error is recorded and parsing resumes at the next line that starts an item,
//! so that a file with several syntax errors reports all of them in one run.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::{self, Span};
use crate::diagnostic::Diagnostic;
use crate::syntax_error;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct FsmParser;

/// The keywords that may start an item; the recovering driver resumes at them.
const ITEM_KEYWORDS: &[&str] = &[
    "state", "actor", "reasons", "calendar", "on", "override", "allow", "enter", "exit",
];

/// Parses a whole file, collecting every syntax error.
pub fn parse(source: &str) -> Result<ast::File, Vec<Diagnostic>> {
    Driver::new(source).run()
}

struct Driver<'s> {
    source: &'s str,
    errors: Vec<Diagnostic>,
    comments: Vec<Span>,
}

impl<'s> Driver<'s> {
    fn new(source: &'s str) -> Self {
        Driver {
            source,
            errors: Vec::new(),
            comments: Vec::new(),
        }
    }

    fn run(mut self) -> Result<ast::File, Vec<Diagnostic>> {
        let Some((name, start, mut pos)) = self.head() else {
            return Err(self.errors);
        };
        let mut items = Vec::new();
        let mut end = None;
        while end.is_none() {
            match FsmParser::parse(Rule::next_item, &self.source[pos..]) {
                Ok(mut pairs) => {
                    let Some(next) = pairs.next() else { break };
                    let offset = pos;
                    pos += next.as_span().end();
                    for pair in next.into_inner() {
                        match pair.as_rule() {
                            Rule::COMMENT => self.comment(&pair, offset),
                            Rule::rbrace => end = Some(offset + pair.as_span().end()),
                            Rule::EOI => {}
                            _ => items.push(Builder { offset }.item(pair)),
                        }
                    }
                }
                Err(error) => {
                    let at = self.error(error, pos);
                    match resume_point(self.source, at.max(pos)) {
                        Some(next) => pos = next,
                        None => break,
                    }
                }
            }
        }
        if let Some(end) = end {
            self.trailing(end);
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let machine = ast::MachineDecl {
            name,
            items,
            span: Span::new(start, end.unwrap_or(self.source.len())),
        };
        Ok(ast::File {
            machine,
            comments: self.comments,
        })
    }

    /// Parses `machine Name {`; returns the name, where the machine starts and where the
    /// items start. On error, resumes after the first `{` so the items are still checked.
    fn head(&mut self) -> Option<(ast::Ident, usize, usize)> {
        match FsmParser::parse(Rule::head_start, self.source) {
            Ok(mut pairs) => {
                let head_start = pairs.next()?;
                let mut name = None;
                let mut start = 0;
                let mut end = head_start.as_span().end();
                for pair in head_start.into_inner() {
                    match pair.as_rule() {
                        Rule::COMMENT => self.comment(&pair, 0),
                        Rule::machine_head => {
                            start = pair.as_span().start();
                            end = pair.as_span().end();
                            for part in pair.into_inner() {
                                match part.as_rule() {
                                    Rule::COMMENT => self.comment(&part, 0),
                                    Rule::machine_name => {
                                        name = Some(Builder { offset: 0 }.ident(part))
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Some((name?, start, end))
            }
            Err(error) => {
                self.error(error, 0);
                let brace = self.source.find('{')?;
                let placeholder = ast::Ident {
                    name: String::new(),
                    span: Span::new(0, 0),
                };
                Some((placeholder, 0, brace + 1))
            }
        }
    }

    /// Checks that nothing but comments follows the machine's closing brace.
    fn trailing(&mut self, pos: usize) {
        match FsmParser::parse(Rule::trailing, &self.source[pos..]) {
            Ok(pairs) => {
                for pair in pairs.flatten() {
                    if pair.as_rule() == Rule::COMMENT {
                        self.comment(&pair, pos);
                    }
                }
            }
            Err(error) => {
                self.error(error, pos);
            }
        }
    }

    fn comment(&mut self, pair: &Pair<'_, Rule>, offset: usize) {
        let span = pair.as_span();
        self.comments
            .push(Span::new(offset + span.start(), offset + span.end()));
    }

    /// Records a syntax error and returns its absolute byte offset.
    fn error(&mut self, error: pest::error::Error<Rule>, offset: usize) -> usize {
        let diagnostic = syntax_error::convert(&error, self.source, offset);
        let at = diagnostic.primary.span.start;
        self.errors.push(diagnostic);
        at
    }
}

/// The start of the first line after the one holding `after` that begins an item or
/// closes the machine (a `}` in the first column).
fn resume_point(source: &str, after: usize) -> Option<usize> {
    let mut line_start = source[after..].find('\n')? + after + 1;
    loop {
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let line = &source[line_start..line_end];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let starts_item = ITEM_KEYWORDS.iter().any(|kw| {
            trimmed.strip_prefix(kw).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace())
            })
        });
        if starts_item || (indent == 0 && trimmed.starts_with('}')) {
            return Some(line_start + indent);
        }
        if line_end >= source.len() {
            return None;
        }
        line_start = line_end + 1;
    }
}

/// Builds syntax-tree nodes from pest pairs of a slice that starts at `offset`.
struct Builder {
    offset: usize,
}

/// The meaningful children of a pair: comments and punctuation are left out.
fn children<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
    pair.into_inner().filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::COMMENT
                | Rule::comma
                | Rule::colon
                | Rule::lparen
                | Rule::rparen
                | Rule::dash
                | Rule::lbrace
                | Rule::rbrace
                | Rule::arrow
        )
    })
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        Span::new(self.offset + span.start(), self.offset + span.end())
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> ast::Ident {
        ast::Ident {
            name: pair.as_str().to_owned(),
            span: self.span(&pair),
        }
    }

    fn literal(&self, pair: Pair<'_, Rule>) -> ast::Literal {
        ast::Literal {
            text: pair.as_str().to_owned(),
            span: self.span(&pair),
        }
    }

    fn idents<'i>(&self, pairs: impl Iterator<Item = Pair<'i, Rule>>) -> Vec<ast::Ident> {
        pairs
            .filter(|p| p.as_rule() == Rule::ident)
            .map(|p| self.ident(p))
            .collect()
    }

    fn item(&self, pair: Pair<'_, Rule>) -> ast::Item {
        match pair.as_rule() {
            Rule::state_decl => ast::Item::State(self.state(pair)),
            Rule::actor_decl => ast::Item::Actor(self.actor(pair)),
            Rule::reasons_decl => ast::Item::Reasons(ast::ReasonsDecl {
                span: self.span(&pair),
                codes: self.idents(pair.into_inner()),
            }),
            Rule::calendar_decl => ast::Item::Calendar(self.calendar(pair)),
            Rule::transition => ast::Item::Transition(self.transition(pair, ast::TransitionKind::On)),
            Rule::override_decl => {
                ast::Item::Transition(self.transition(pair, ast::TransitionKind::Override))
            }
            Rule::allow_decl => ast::Item::Allow(self.allow(pair)),
            Rule::hook => ast::Item::Hook(self.hook(pair)),
            rule => unreachable!("the grammar has no item {rule:?}"),
        }
    }

    fn state(&self, pair: Pair<'_, Rule>) -> ast::StateDecl {
        let span = self.span(&pair);
        let mut name = None;
        let mut flags = Vec::new();
        for part in children(pair) {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(part)),
                Rule::state_flag => {
                    let flag = match part.as_str() {
                        "initial" => ast::StateFlag::Initial,
                        _ => ast::StateFlag::Terminal,
                    };
                    flags.push((flag, self.span(&part)));
                }
                _ => {}
            }
        }
        ast::StateDecl {
            name: name.expect("the grammar requires a state name"),
            flags,
            span,
        }
    }

    fn actor(&self, pair: Pair<'_, Rule>) -> ast::ActorDecl {
        let span = self.span(&pair);
        let mut name = None;
        let mut role = None;
        for part in children(pair) {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(part)),
                Rule::actor_role => {
                    let kind = match part.as_str() {
                        "owner" => ast::ActorRole::Owner,
                        _ => ast::ActorRole::Staff,
                    };
                    role = Some((kind, self.span(&part)));
                }
                _ => {}
            }
        }
        ast::ActorDecl {
            name: name.expect("the grammar requires an actor name"),
            role,
            span,
        }
    }

    fn calendar(&self, pair: Pair<'_, Rule>) -> ast::CalendarDecl {
        let span = self.span(&pair);
        let mut name = None;
        let mut timezone = None;
        let mut hours = Vec::new();
        let mut closed = None;
        for part in children(pair) {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(part)),
                Rule::timezone => {
                    let string = children(part)
                        .find(|p| p.as_rule() == Rule::string)
                        .expect("the grammar requires a time zone string");
                    let span = self.span(&string);
                    let text = string.into_inner().as_str().to_owned();
                    timezone = Some(ast::Literal { text, span });
                }
                Rule::hours => hours.push(self.hours(part)),
                Rule::closed => {
                    closed = Some(ast::ClosedDecl {
                        span: self.span(&part),
                        dates: children(part)
                            .filter(|p| p.as_rule() == Rule::date)
                            .map(|p| self.literal(p))
                            .collect(),
                    })
                }
                _ => {}
            }
        }
        ast::CalendarDecl {
            name: name.expect("the grammar requires a calendar name"),
            timezone: timezone.expect("the grammar requires a time zone"),
            hours,
            closed,
            span,
        }
    }

    fn hours(&self, pair: Pair<'_, Rule>) -> ast::HoursDecl {
        let span = self.span(&pair);
        let mut days = Vec::new();
        let mut spans = Vec::new();
        for part in children(pair) {
            match part.as_rule() {
                Rule::day_range => {
                    days = children(part).map(|d| self.day(d)).collect();
                }
                Rule::time_span => {
                    let span = self.span(&part);
                    let mut times = children(part).map(|t| self.literal(t));
                    let start = times.next().expect("a span has a start");
                    let end = times.next().expect("a span has an end");
                    spans.push(ast::TimeSpan { start, end, span });
                }
                _ => {}
            }
        }
        let mut days = days.into_iter();
        ast::HoursDecl {
            first: days.next().expect("the grammar requires a day"),
            last: days.next(),
            spans,
            span,
        }
    }

    fn day(&self, pair: Pair<'_, Rule>) -> ast::DayRef {
        use chrono::Weekday::*;
        let day = match pair.as_str() {
            "mon" => Mon,
            "tue" => Tue,
            "wed" => Wed,
            "thu" => Thu,
            "fri" => Fri,
            "sat" => Sat,
            _ => Sun,
        };
        ast::DayRef {
            day,
            span: self.span(&pair),
        }
    }

    fn transition(&self, pair: Pair<'_, Rule>, kind: ast::TransitionKind) -> ast::TransitionDecl {
        let span = self.span(&pair);
        let mut parts = children(pair);
        let keyword = self.span(&parts.next().expect("a transition starts with a keyword"));
        let event = self.ident(parts.next().expect("a transition names its event"));
        let from = self.idents(children(parts.next().expect("a transition has sources")));
        let to = self.ident(parts.next().expect("a transition has a target"));
        let clauses = parts.map(|p| self.clause(p)).collect();
        ast::TransitionDecl {
            kind,
            keyword,
            event,
            from,
            to,
            clauses,
            span,
        }
    }

    fn clause(&self, pair: Pair<'_, Rule>) -> ast::Clause {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::by_clause => ast::Clause::By(ast::ByClause {
                actors: children(pair)
                    .filter(|p| p.as_rule() == Rule::actor_ref)
                    .map(|p| self.actor_ref(p))
                    .collect(),
                span,
            }),
            Rule::when_clause => ast::Clause::When(ast::WhenClause {
                guard: self.guard(
                    children(pair)
                        .find(|p| p.as_rule() == Rule::guard)
                        .expect("a when clause has a guard"),
                ),
                span,
            }),
            Rule::do_clause => ast::Clause::Do(ast::DoClause {
                actions: children(pair)
                    .filter(|p| p.as_rule() == Rule::action)
                    .map(|p| self.action(p))
                    .collect(),
                span,
            }),
            Rule::emit_clause => ast::Clause::Emit(ast::EmitClause {
                notifications: self.idents(pair.into_inner()),
                span,
            }),
            Rule::within_clause => ast::Clause::Within(ast::WithinClause {
                calendar: self
                    .idents(pair.into_inner())
                    .pop()
                    .expect("a within clause names a calendar"),
                span,
            }),
            rule => unreachable!("the grammar has no clause {rule:?}"),
        }
    }

    fn actor_ref(&self, pair: Pair<'_, Rule>) -> ast::ActorRef {
        let span = self.span(&pair);
        let mut name = None;
        let mut reason = None;
        for part in children(pair) {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(part)),
                Rule::reason_flag => reason = Some(self.span(&part)),
                _ => {}
            }
        }
        ast::ActorRef {
            name: name.expect("an actor reference has a name"),
            reason,
            span,
        }
    }

    fn action(&self, pair: Pair<'_, Rule>) -> ast::ActionRef {
        let span = self.span(&pair);
        let mut names = self.idents(pair.into_inner()).into_iter();
        ast::ActionRef {
            name: names.next().expect("an action has a name"),
            undo: names.next(),
            span,
        }
    }

    /// `guard` and `conj` with one operand collapse to that operand.
    fn guard(&self, pair: Pair<'_, Rule>) -> ast::GuardExpr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::ident => ast::GuardExpr::Name(self.ident(pair)),
            Rule::not_expr => {
                let operand = children(pair)
                    .find(|p| p.as_rule() != Rule::kw_not)
                    .expect("`not` has an operand");
                ast::GuardExpr::Not(Box::new(self.guard(operand)), span)
            }
            Rule::paren => {
                let inner = children(pair).next().expect("parentheses hold a guard");
                ast::GuardExpr::Group(Box::new(self.guard(inner)), span)
            }
            Rule::guard | Rule::conj => {
                let is_or = pair.as_rule() == Rule::guard;
                let mut operands: Vec<_> = children(pair)
                    .filter(|p| !matches!(p.as_rule(), Rule::kw_and | Rule::kw_or))
                    .map(|p| self.guard(p))
                    .collect();
                match (operands.len(), is_or) {
                    (1, _) => operands.pop().expect("one operand"),
                    (_, true) => ast::GuardExpr::Or(operands, span),
                    (_, false) => ast::GuardExpr::And(operands, span),
                }
            }
            rule => unreachable!("the grammar has no guard {rule:?}"),
        }
    }

    fn allow(&self, pair: Pair<'_, Rule>) -> ast::AllowDecl {
        let span = self.span(&pair);
        let mut names = self.idents(pair.into_inner()).into_iter();
        ast::AllowDecl {
            operation: names.next().expect("allow names an operation"),
            states: names.collect(),
            span,
        }
    }

    fn hook(&self, pair: Pair<'_, Rule>) -> ast::HookDecl {
        let span = self.span(&pair);
        let mut parts = children(pair);
        let kind = match parts.next().expect("a hook has a kind").as_str() {
            "enter" => ast::HookKind::Enter,
            _ => ast::HookKind::Exit,
        };
        let state = self.ident(parts.next().expect("a hook names a state"));
        let clauses = parts.map(|p| self.clause(p)).collect();
        ast::HookDecl {
            kind,
            state,
            clauses,
            span,
        }
    }
}
