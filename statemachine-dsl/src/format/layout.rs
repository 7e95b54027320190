//! From the syntax tree to logical lines of output: what each line says, at which depth,
//! which tokens of the source it stands for, and which lines align with each other.

use crate::ast::{self, Clause, GuardExpr, Item, Span};

use super::{INDENT, WIDTH};

/// The kind of item a line belongs to; a change of kind between two items is what puts
/// a blank line between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    State,
    Actor,
    Reasons,
    Calendar,
    /// Transitions and overrides.
    Transition,
    Hook,
    Allow,
}

/// Where a line sits in a block, which decides where blank lines may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// Ends with the `{` of a block.
    Open,
    /// A block's closing `}`.
    Close,
    Plain,
}

/// What follows a line's head: text, then a comma-separated list that may be wrapped,
/// then more text that stays with the list's last element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tail {
    pub before: String,
    pub list: Vec<String>,
    pub after: String,
}

/// One logical line of output; a wrapped list makes it several physical lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Line {
    /// Indentation, in levels.
    pub depth: usize,
    pub head: String,
    /// Printed after the head (padded to `align`) and a space.
    pub tail: Option<Tail>,
    /// The width the head is padded to when a tail follows; 0 for none.
    pub align: usize,
    /// From the line's first token to its last one in the source.
    pub span: Span,
    /// The index of the item the line belongs to, `None` for the machine's own lines.
    pub item: Option<(usize, Kind)>,
    pub shape: Shape,
}

impl Line {
    fn new(depth: usize, head: impl Into<String>, span: Span) -> Self {
        Line {
            depth,
            head: head.into(),
            tail: None,
            align: 0,
            span,
            item: None,
            shape: Shape::Plain,
        }
    }

    fn list(mut self, before: &str, list: Vec<String>, after: &str) -> Self {
        self.tail = Some(Tail {
            before: before.to_owned(),
            list,
            after: after.to_owned(),
        });
        self
    }

    fn shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// The depth that comments on their own line before this line are indented to:
    /// those before a closing `}` belong inside the block.
    pub fn comment_depth(&self) -> usize {
        match self.shape {
            Shape::Close => self.depth + 1,
            Shape::Open | Shape::Plain => self.depth,
        }
    }
}

/// The lines of a file, in source order.
pub(super) fn lines(file: &ast::File, source: &str, comments: &[Span]) -> Vec<Line> {
    let mut builder = Builder {
        scanner: Scanner { source, comments },
        lines: Vec::new(),
        run: None,
    };
    builder.file(&file.machine);
    builder.lines
}

/// The kinds of run whose lines align with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    StatesAndActors,
    Allows,
    Hooks,
}

struct Builder<'s> {
    scanner: Scanner<'s>,
    lines: Vec<Line>,
    /// The run of aligned items being collected, with the indices of their lines.
    run: Option<(Run, Vec<usize>)>,
}

impl Builder<'_> {
    fn file(&mut self, machine: &ast::MachineDecl) {
        let brace = self.scanner.next_token(machine.name.span.end);
        let head = format!("machine {} {{", machine.name.name);
        let span = Span::new(machine.span.start, brace + 1);
        self.lines.push(Line::new(0, head, span).shape(Shape::Open));
        for (index, item) in machine.items.iter().enumerate() {
            let first = self.lines.len();
            let run = self.item(item);
            if self.run.as_ref().map(|(kind, _)| *kind) != run {
                self.flush_run();
            }
            if let Some(run) = run {
                self.run.get_or_insert((run, Vec::new())).1.push(first);
            }
            let kind = kind(item);
            for line in &mut self.lines[first..] {
                line.item = Some((index, kind));
            }
        }
        self.flush_run();
        let end = machine.span.end;
        let close = Line::new(0, "}", Span::new(end.saturating_sub(1), end));
        self.lines.push(close.shape(Shape::Close));
    }

    /// Aligns the lines of the run that just ended.
    fn flush_run(&mut self) {
        if let Some((_, members)) = self.run.take() {
            align(&mut self.lines, &members);
        }
    }

    /// Adds an item's lines; returns the kind of aligned run it takes part in.
    fn item(&mut self, item: &Item) -> Option<Run> {
        match item {
            Item::State(state) => {
                let flags: Vec<&str> = state.flags.iter().map(|(f, _)| flag(*f)).collect();
                let end = state.flags.last().map_or(state.name.span, |(_, s)| *s).end;
                let span = Span::new(state.span.start, end);
                let mut line = Line::new(1, format!("state {}", state.name.name), span);
                if !flags.is_empty() {
                    line = line.list(&flags.join(" "), Vec::new(), "");
                }
                self.lines.push(line);
                Some(Run::StatesAndActors)
            }
            Item::Actor(actor) => {
                let end = actor.role.map_or(actor.name.span, |(_, s)| s).end;
                let span = Span::new(actor.span.start, end);
                let mut line = Line::new(1, format!("actor {}", actor.name.name), span);
                if let Some((kind, _)) = actor.role {
                    line = line.list(role(kind), Vec::new(), "");
                }
                self.lines.push(line);
                Some(Run::StatesAndActors)
            }
            Item::Reasons(reasons) => {
                let codes = names(&reasons.codes);
                let span = Span::new(reasons.span.start, last_end(&reasons.codes, reasons.span));
                self.lines
                    .push(Line::new(1, "reasons", span).list("", codes, ""));
                None
            }
            Item::Calendar(calendar) => {
                self.calendar(calendar);
                None
            }
            Item::Transition(transition) => {
                self.transition(transition);
                None
            }
            Item::Allow(allow) => {
                let head = format!("allow {}", allow.operation.name);
                let states = names(&allow.states);
                let span = Span::new(allow.span.start, last_end(&allow.states, allow.span));
                self.lines
                    .push(Line::new(1, head, span).list("in ", states, ""));
                Some(Run::Allows)
            }
            Item::Hook(hook) => self.hook(hook),
        }
    }

    fn calendar(&mut self, calendar: &ast::CalendarDecl) {
        let brace = self.scanner.next_token(calendar.name.span.end);
        let head = format!("calendar {} {{", calendar.name.name);
        let span = Span::new(calendar.span.start, brace + 1);
        self.lines.push(Line::new(1, head, span).shape(Shape::Open));

        let keyword = self.scanner.next_token(brace + 1);
        let timezone = format!("timezone \"{}\"", calendar.timezone.text);
        let span = Span::new(keyword, calendar.timezone.span.end);
        self.lines.push(Line::new(2, timezone, span));

        let mut aligned = Vec::new();
        for hours in &calendar.hours {
            let mut days = day(hours.first.day).to_owned();
            if let Some(last) = hours.last {
                days = format!("{days}-{}", day(last.day));
            }
            let spans = hours
                .spans
                .iter()
                .map(|s| format!("{}-{}", s.start.text, s.end.text))
                .collect();
            let end = hours
                .spans
                .last()
                .map_or(hours.span.end, |s| s.end.span.end);
            let span = Span::new(hours.span.start, end);
            aligned.push(self.lines.len());
            self.lines
                .push(Line::new(2, days, span).list("", spans, ""));
        }
        if let Some(closed) = &calendar.closed {
            let dates = closed.dates.iter().map(|d| d.text.clone()).collect();
            let end = closed.dates.last().map_or(closed.span.end, |d| d.span.end);
            let span = Span::new(closed.span.start, end);
            aligned.push(self.lines.len());
            self.lines
                .push(Line::new(2, "closed", span).list("", dates, ""));
        }
        align(&mut self.lines, &aligned);
        self.close(1, calendar.span);
    }

    fn transition(&mut self, transition: &ast::TransitionDecl) {
        let keyword = match transition.kind {
            ast::TransitionKind::On => "on",
            ast::TransitionKind::Override => "override",
        };
        let head = format!("{keyword} {}:", transition.event.name);
        let sources = names(&transition.from);
        let to = &transition.to.name;
        if transition.clauses.is_empty() {
            let line =
                Line::new(1, head, transition.span).list("", sources, &format!(" -> {to} {{}}"));
            self.lines.push(line);
            return;
        }
        let brace = self.scanner.next_token(transition.to.span.end);
        let span = Span::new(transition.span.start, brace + 1);
        let line = Line::new(1, head, span).list("", sources, &format!(" -> {to} {{"));
        self.lines.push(line.shape(Shape::Open));
        for clause in &transition.clauses {
            self.lines.push(clause_line(clause));
        }
        self.close(1, transition.span);
    }

    fn hook(&mut self, hook: &ast::HookDecl) -> Option<Run> {
        let kind = match hook.kind {
            ast::HookKind::Enter => "enter",
            ast::HookKind::Exit => "exit",
        };
        let head = format!("{kind} {}", hook.state.name);
        let one_line = match hook.clauses.as_slice() {
            [] => Some("{}".to_owned()),
            [clause] => Some(format!("{{ {} }}", clause_text(clause))),
            _ => None,
        };
        if let Some(body) = one_line {
            let width = INDENT + head.chars().count() + 1 + body.chars().count();
            if width <= WIDTH {
                self.lines
                    .push(Line::new(1, head, hook.span).list(&body, Vec::new(), ""));
                return Some(Run::Hooks);
            }
        }
        let brace = self.scanner.next_token(hook.state.span.end);
        let span = Span::new(hook.span.start, brace + 1);
        self.lines
            .push(Line::new(1, format!("{head} {{"), span).shape(Shape::Open));
        for clause in &hook.clauses {
            self.lines.push(clause_line(clause));
        }
        self.close(1, hook.span);
        None
    }

    /// The closing `}` of a block whose span is `span`.
    fn close(&mut self, depth: usize, span: Span) {
        let brace = Span::new(span.end.saturating_sub(1), span.end);
        self.lines
            .push(Line::new(depth, "}", brace).shape(Shape::Close));
    }
}

/// Pads the heads of `members` to the longest of them.
fn align(lines: &mut [Line], members: &[usize]) {
    let width = members
        .iter()
        .filter_map(|&i| lines.get(i))
        .map(|l| l.head.chars().count())
        .max()
        .unwrap_or(0);
    for &i in members {
        if let Some(line) = lines.get_mut(i) {
            line.align = width;
        }
    }
}

fn kind(item: &Item) -> Kind {
    match item {
        Item::State(_) => Kind::State,
        Item::Actor(_) => Kind::Actor,
        Item::Reasons(_) => Kind::Reasons,
        Item::Calendar(_) => Kind::Calendar,
        Item::Transition(_) => Kind::Transition,
        Item::Hook(_) => Kind::Hook,
        Item::Allow(_) => Kind::Allow,
    }
}

fn clause_line(clause: &Clause) -> Line {
    let span = Span::new(clause.span().start, clause_end(clause));
    let line = |head: &str| Line::new(2, head, span);
    match clause {
        Clause::By(by) => line("by").list("", by.actors.iter().map(actor_ref).collect(), ""),
        Clause::Do(d) => line("do").list("", d.actions.iter().map(action).collect(), ""),
        Clause::Emit(emit) => line("emit").list("", names(&emit.notifications), ""),
        Clause::When(_) | Clause::Within(_) => line(&clause_text(clause)),
    }
}

/// Where a clause's last token ends. The parser's spans of rules that end in an
/// optional or repeated part (`by a`, `a and b`) may run on over the whitespace and
/// comments that follow, so the end is taken from the last token itself.
fn clause_end(clause: &Clause) -> usize {
    match clause {
        Clause::By(by) => by.actors.last().map_or(by.span.end, |actor| {
            actor.reason.unwrap_or(actor.name.span).end
        }),
        Clause::When(when) => guard_end(&when.guard),
        Clause::Do(d) => d.actions.last().map_or(d.span.end, |action| {
            action.undo.as_ref().unwrap_or(&action.name).span.end
        }),
        Clause::Emit(emit) => last_end(&emit.notifications, emit.span),
        Clause::Within(within) => within.calendar.span.end,
    }
}

fn guard_end(expr: &GuardExpr) -> usize {
    match expr {
        GuardExpr::Name(name) => name.span.end,
        GuardExpr::Not(operand, _) => guard_end(operand),
        GuardExpr::And(operands, span) | GuardExpr::Or(operands, span) => {
            operands.last().map_or(span.end, guard_end)
        }
        GuardExpr::Group(_, span) => span.end,
    }
}

/// The end of the last name of a list, or of `whole` for an empty one.
fn last_end(idents: &[ast::Ident], whole: Span) -> usize {
    idents.last().map_or(whole.end, |i| i.span.end)
}

/// A clause on one line, without wrapping.
fn clause_text(clause: &Clause) -> String {
    match clause {
        Clause::By(by) => {
            let actors: Vec<String> = by.actors.iter().map(actor_ref).collect();
            format!("by {}", actors.join(", "))
        }
        Clause::When(when) => format!("when {}", guard(&when.guard)),
        Clause::Do(d) => {
            let actions: Vec<String> = d.actions.iter().map(action).collect();
            format!("do {}", actions.join(", "))
        }
        Clause::Emit(emit) => format!("emit {}", names(&emit.notifications).join(", ")),
        Clause::Within(within) => format!("within {}", within.calendar.name),
    }
}

fn actor_ref(actor: &ast::ActorRef) -> String {
    match actor.reason {
        Some(_) => format!("{}(reason)", actor.name.name),
        None => actor.name.name.clone(),
    }
}

fn action(action: &ast::ActionRef) -> String {
    match &action.undo {
        Some(undo) => format!("{} undo {}", action.name.name, undo.name),
        None => action.name.name.clone(),
    }
}

/// A guard as written: the parser keeps parentheses as `Group`, and `and` binds tighter
/// than `or` in both the grammar and this printing, so no other parentheses are needed.
pub(super) fn guard(expr: &GuardExpr) -> String {
    let join = |operands: &[GuardExpr], op: &str| {
        let parts: Vec<String> = operands.iter().map(guard).collect();
        parts.join(op)
    };
    match expr {
        GuardExpr::Name(name) => name.name.clone(),
        GuardExpr::Not(operand, _) => format!("not {}", guard(operand)),
        GuardExpr::And(operands, _) => join(operands, " and "),
        GuardExpr::Or(operands, _) => join(operands, " or "),
        GuardExpr::Group(inner, _) => format!("({})", guard(inner)),
    }
}

fn names(idents: &[ast::Ident]) -> Vec<String> {
    idents.iter().map(|i| i.name.clone()).collect()
}

fn flag(flag: ast::StateFlag) -> &'static str {
    match flag {
        ast::StateFlag::Initial => "initial",
        ast::StateFlag::Terminal => "terminal",
    }
}

fn role(role: ast::ActorRole) -> &'static str {
    match role {
        ast::ActorRole::Owner => "owner",
        ast::ActorRole::Staff => "staff",
    }
}

fn day(day: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match day {
        Mon => "mon",
        Tue => "tue",
        Wed => "wed",
        Thu => "thu",
        Fri => "fri",
        Sat => "sat",
        Sun => "sun",
    }
}

/// Finds punctuation that the syntax tree has no span for (the `{` of a block).
struct Scanner<'s> {
    source: &'s str,
    /// Every comment, in source order.
    comments: &'s [Span],
}

impl Scanner<'_> {
    /// The start of the first token at or after `pos`, skipping whitespace and comments.
    fn next_token(&self, mut pos: usize) -> usize {
        let bytes = self.source.as_bytes();
        loop {
            while bytes.get(pos).is_some_and(|b| b.is_ascii_whitespace()) {
                pos += 1;
            }
            match self.comments.binary_search_by_key(&pos, |c| c.start) {
                Ok(i) => pos = self.comments[i].end,
                Err(_) => return pos,
            }
        }
    }
}
