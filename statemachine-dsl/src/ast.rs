//! The syntax tree of a `.fsm` file, as written, with the byte span of every part.
//!
//! The tree keeps what the user wrote (including parentheses in guards and the order of
//! items) so that the formatter can print it back and diagnostics can point at it. The
//! checks in [`crate::validate`] turn it into a [`crate::Model`].

use serde::Serialize;

/// A byte range `start..end` into the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span that covers both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A parsed file: one machine and the comments found anywhere in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub machine: MachineDecl,
    /// Every `//` and `/* */` comment, in source order.
    pub comments: Vec<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineDecl {
    pub name: Ident,
    pub items: Vec<Item>,
    /// From `machine` to the closing brace.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    State(StateDecl),
    Actor(ActorDecl),
    Reasons(ReasonsDecl),
    Calendar(CalendarDecl),
    Transition(TransitionDecl),
    Allow(AllowDecl),
    Hook(HookDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::State(d) => d.span,
            Item::Actor(d) => d.span,
            Item::Reasons(d) => d.span,
            Item::Calendar(d) => d.span,
            Item::Transition(d) => d.span,
            Item::Allow(d) => d.span,
            Item::Hook(d) => d.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateFlag {
    Initial,
    Terminal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDecl {
    pub name: Ident,
    /// Flags in the order written; repeats are kept so that the checks can report them.
    pub flags: Vec<(StateFlag, Span)>,
    pub span: Span,
}

impl StateDecl {
    pub fn has(&self, flag: StateFlag) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorRole {
    Owner,
    Staff,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorDecl {
    pub name: Ident,
    pub role: Option<(ActorRole, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonsDecl {
    pub codes: Vec<Ident>,
    pub span: Span,
}

/// A literal token kept as text (a string's contents, a time or a date); the checks
/// decide whether its value is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarDecl {
    pub name: Ident,
    /// The time zone's name, without the quotes; the span covers the quotes.
    pub timezone: Literal,
    pub hours: Vec<HoursDecl>,
    pub closed: Option<ClosedDecl>,
    pub span: Span,
}

/// `mon-fri 09:00-12:00, 13:00-17:00`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoursDecl {
    pub first: DayRef,
    pub last: Option<DayRef>,
    pub spans: Vec<TimeSpan>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRef {
    pub day: chrono::Weekday,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeSpan {
    pub start: Literal,
    pub end: Literal,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedDecl {
    pub dates: Vec<Literal>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    /// `on e: a -> b { ... }`
    On,
    /// `override e: a -> b { ... }`
    Override,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionDecl {
    pub kind: TransitionKind,
    /// The span of the `on` or `override` keyword.
    pub keyword: Span,
    pub event: Ident,
    pub from: Vec<Ident>,
    pub to: Ident,
    pub clauses: Vec<Clause>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Clause {
    By(ByClause),
    When(WhenClause),
    Do(DoClause),
    Emit(EmitClause),
    Within(WithinClause),
}

impl Clause {
    pub fn span(&self) -> Span {
        match self {
            Clause::By(c) => c.span,
            Clause::When(c) => c.span,
            Clause::Do(c) => c.span,
            Clause::Emit(c) => c.span,
            Clause::Within(c) => c.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByClause {
    pub actors: Vec<ActorRef>,
    pub span: Span,
}

/// `support(reason)`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorRef {
    pub name: Ident,
    /// The span of `(reason)` when present.
    pub reason: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhenClause {
    pub guard: GuardExpr,
    pub span: Span,
}

/// A guard expression as written; `Group` keeps the user's parentheses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardExpr {
    Name(Ident),
    Not(Box<GuardExpr>, Span),
    /// Two or more operands.
    And(Vec<GuardExpr>, Span),
    /// Two or more operands.
    Or(Vec<GuardExpr>, Span),
    Group(Box<GuardExpr>, Span),
}

impl GuardExpr {
    pub fn span(&self) -> Span {
        match self {
            GuardExpr::Name(i) => i.span,
            GuardExpr::Not(_, s)
            | GuardExpr::And(_, s)
            | GuardExpr::Or(_, s)
            | GuardExpr::Group(_, s) => *s,
        }
    }

    /// Every guard name in the expression, left to right.
    pub fn names(&self) -> Vec<&Ident> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut Vec<&'a Ident>) {
        match self {
            GuardExpr::Name(i) => out.push(i),
            GuardExpr::Not(e, _) | GuardExpr::Group(e, _) => e.collect_names(out),
            GuardExpr::And(es, _) | GuardExpr::Or(es, _) => {
                es.iter().for_each(|e| e.collect_names(out))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoClause {
    pub actions: Vec<ActionRef>,
    pub span: Span,
}

/// `capture_payment undo refund_payment`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef {
    pub name: Ident,
    pub undo: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmitClause {
    pub notifications: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithinClause {
    pub calendar: Ident,
    pub span: Span,
}

/// `allow modify_items in pending, confirmed`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowDecl {
    pub operation: Ident,
    pub states: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    Enter,
    Exit,
}

/// `enter cancelled { emit order_cancelled }`; only `do` and `emit` clauses may appear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookDecl {
    pub kind: HookKind,
    pub state: Ident,
    pub clauses: Vec<Clause>,
    pub span: Span,
}
