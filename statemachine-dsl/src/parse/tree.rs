//! Pest pairs to syntax-tree nodes, once a piece of the file has parsed.

use pest::iterators::Pair;

use super::Rule;
use crate::ast::{self, Span};

/// Builds syntax-tree nodes from pest pairs of a slice that starts at `offset`.
pub(super) struct Builder {
    pub(super) offset: usize,
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
    /// The span of a pair, ending at its last token. Pest's implicit whitespace makes a
    /// rule such as `ident ~ reason_flag?` swallow the blanks and comments after it when
    /// the optional part is absent; a diagnostic that underlines `admin` must not run on
    /// to the next line, so trailing blanks and comments are left out of the span.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        let comments: Vec<(usize, usize)> = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| p.as_rule() == Rule::COMMENT)
            .map(|p| (p.as_span().start(), p.as_span().end()))
            .collect();
        // Blanks and comments are peeled off the end until a token is left.
        let mut end = span.end();
        loop {
            let text = &span.get_input()[span.start()..end];
            end = span.start() + text.trim_end().len();
            match comments.iter().find(|(_, e)| *e == end) {
                Some((start, _)) => end = *start,
                None => break,
            }
        }
        Span::new(self.offset + span.start(), self.offset + end)
    }

    pub(super) fn ident(&self, pair: Pair<'_, Rule>) -> ast::Ident {
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

    pub(super) fn item(&self, pair: Pair<'_, Rule>) -> ast::Item {
        match pair.as_rule() {
            Rule::state_decl => ast::Item::State(self.state(pair)),
            Rule::actor_decl => ast::Item::Actor(self.actor(pair)),
            Rule::reasons_decl => ast::Item::Reasons(ast::ReasonsDecl {
                span: self.span(&pair),
                codes: self.idents(pair.into_inner()),
            }),
            Rule::calendar_decl => ast::Item::Calendar(self.calendar(pair)),
            Rule::transition => {
                ast::Item::Transition(self.transition(pair, ast::TransitionKind::On))
            }
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
