//! Source text to syntax tree.
//!
//! The grammar (`grammar.pest`) is driven one item at a time: when an item does not
//! parse, the error is recorded and parsing resumes at the next line that starts an item,
//! so that a file with several syntax errors reports all of them in one run.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::{self, Span};
use crate::diagnostic::{Diagnostic, Label};
use crate::syntax_error::{self, ITEM_KEYWORDS};

mod tree;

use tree::Builder;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct FsmParser;

/// Parses a whole file, collecting every syntax error.
pub fn parse(source: &str) -> Result<ast::File, Vec<Diagnostic>> {
    match Driver::new(source).run() {
        (Some(file), errors) if errors.is_empty() => Ok(file),
        (_, errors) => Err(errors),
    }
}

/// Parses what can be parsed: the items that parsed (when the file has a `machine`
/// header) and every syntax error. The `machine!` macro uses the partial file to keep
/// the names of a broken file's well-formed items, so that one typo does not make every
/// use of them an error too.
pub fn parse_partial(source: &str) -> (Option<ast::File>, Vec<Diagnostic>) {
    Driver::new(source).run()
}

struct Driver<'s> {
    source: &'s str,
    errors: Vec<Diagnostic>,
    comments: Vec<Span>,
    /// The `{` after `machine Name`, pointed at when the file ends before its `}`.
    machine_brace: Option<usize>,
    /// The file has no `machine Name {` at all: its items are still parsed, and it may
    /// end without a `}`, so that the one missing header is the only error reported.
    headless: bool,
}

/// Where the items start, after the machine's header.
struct Head {
    name: ast::Ident,
    start: usize,
    items: usize,
}

impl<'s> Driver<'s> {
    fn new(source: &'s str) -> Self {
        Driver {
            source,
            errors: Vec::new(),
            comments: Vec::new(),
            machine_brace: None,
            headless: false,
        }
    }

    fn run(mut self) -> (Option<ast::File>, Vec<Diagnostic>) {
        let Some(Head {
            name,
            start,
            items: mut pos,
        }) = self.head()
        else {
            return (None, self.errors);
        };
        let mut items = Vec::new();
        let mut end = None;
        while end.is_none() {
            if self.headless && self.only_trivia(pos) {
                break;
            }
            match FsmParser::parse(Rule::next_item, &self.source[pos..]) {
                Ok(mut pairs) => {
                    let Some(next) = pairs.next() else { break };
                    let offset = pos;
                    pos += next.as_span().end();
                    if let Some(error) = self.scan(&next, offset) {
                        self.errors.push(error);
                        continue;
                    }
                    for pair in next.into_inner() {
                        match pair.as_rule() {
                            Rule::COMMENT => {}
                            Rule::rbrace => end = Some(offset + pair.as_span().end()),
                            _ => items.push(Builder { offset }.item(pair)),
                        }
                    }
                }
                Err(error) => {
                    let at = self.error(&error, pos);
                    // An item keyword at the start of a line after the error is where
                    // the next item begins (the broken one left its block open, say):
                    // parsing resumes right there, so that item is checked too.
                    let next_item_here = at > pos
                        && syntax_error::at_line_start(self.source, at)
                        && ITEM_KEYWORDS.contains(&syntax_error::found_token(self.source, at));
                    match resume_point(self.source, at.max(pos)) {
                        _ if next_item_here => pos = at,
                        Some(next) => pos = next,
                        None => break,
                    }
                }
            }
        }
        if let Some(end) = end {
            self.trailing(end);
        }
        let machine = ast::MachineDecl {
            name,
            items,
            span: Span::new(start, end.unwrap_or(self.source.len())),
        };
        let file = ast::File {
            machine,
            comments: self.comments,
        };
        (Some(file), self.errors)
    }

    /// Whether only blanks and comments are left from `pos` on; collects the comments.
    fn only_trivia(&mut self, pos: usize) -> bool {
        let Ok(pairs) = FsmParser::parse(Rule::trailing, &self.source[pos..]) else {
            return false;
        };
        for pair in pairs.flatten() {
            if pair.as_rule() == Rule::COMMENT {
                self.comment(&pair, pos);
            }
        }
        true
    }

    /// Parses `machine Name {`; returns the name, where the machine starts and where the
    /// items start. On error, resumes where the items most likely start, so that they
    /// are still checked.
    fn head(&mut self) -> Option<Head> {
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
                                    Rule::lbrace => {
                                        self.machine_brace = Some(part.as_span().start())
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Some(Head {
                    name: name?,
                    start,
                    items: end,
                })
            }
            Err(error) => {
                let at = syntax_error::position(&error);
                let found = syntax_error::found_token(self.source, at);
                let starts_item = ITEM_KEYWORDS.contains(&found);
                self.headless = starts_item && syntax_error::expects_machine(&error);
                let mut diagnostic = syntax_error::convert(&error, self.source, 0, None);
                if syntax_error::expects_machine(&error) {
                    diagnostic = diagnostic.with_help(
                        "a file declares one machine: put its items inside `machine Order { ... }`",
                    );
                }
                self.errors.push(diagnostic);
                let placeholder = ast::Ident {
                    name: String::new(),
                    span: Span::new(0, 0),
                };
                // `machine Order` without `{` goes straight on to an item; `machine order {`
                // has its `{` before the next item; anything else resumes at the next item.
                let items = if starts_item {
                    at
                } else {
                    let next = resume_point(self.source, at);
                    let limit = next.unwrap_or(self.source.len());
                    match self.source[at..limit].find('{') {
                        Some(brace) => {
                            self.machine_brace = Some(at + brace);
                            at + brace + 1
                        }
                        None => next?,
                    }
                };
                Some(Head {
                    name: placeholder,
                    start: 0,
                    items,
                })
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
                // Whatever follows was most likely meant to be inside the machine: a
                // `}` too many ended it early, or an item was added below it.
                let diagnostic = syntax_error::convert(&error, self.source, pos, None)
                    .with_secondary(Label::new(
                        Span::new(pos.saturating_sub(1), pos),
                        "the machine ends here",
                    ))
                    .with_help(
                        "everything belongs inside `machine ... { }`: move this before the machine's `}`, or remove a `}` too many",
                    );
                self.errors.push(diagnostic);
            }
        }
    }

    /// One pass over everything inside a parsed item. It collects the comments nested
    /// in it (after `state paid // note`, say), so that none is lost, and refuses a guard
    /// that nests deeper than [`MAX_GUARD_DEPTH`]: a sweep in source order with a stack
    /// of the open groups' ends, so that the check does not recurse itself.
    fn scan(&mut self, next: &Pair<'_, Rule>, offset: usize) -> Option<Diagnostic> {
        let mut open_ends: Vec<usize> = Vec::new();
        for pair in next.clone().into_inner().flatten() {
            match pair.as_rule() {
                Rule::COMMENT => self.comment(&pair, offset),
                Rule::paren | Rule::not_expr => {
                    let span = pair.as_span();
                    while open_ends.last().is_some_and(|&end| end <= span.start()) {
                        open_ends.pop();
                    }
                    open_ends.push(span.end());
                    if open_ends.len() > MAX_GUARD_DEPTH {
                        let at = offset + span.start();
                        let token = syntax_error::found_token(pair.get_input(), span.start());
                        return Some(syntax_error::too_deep(Span::new(at, at + token.len())));
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn comment(&mut self, pair: &Pair<'_, Rule>, offset: usize) {
        let span = pair.as_span();
        self.comments
            .push(Span::new(offset + span.start(), offset + span.end()));
    }

    /// Records a syntax error in the item starting at `pos`, and returns its absolute
    /// byte offset.
    fn error(&mut self, error: &pest::error::Error<Rule>, pos: usize) -> usize {
        let at = pos + syntax_error::position(error);
        let open = open_brace(self.source, pos, at).or(self.machine_brace);
        let diagnostic = syntax_error::convert(error, self.source, pos, open);
        self.errors.push(diagnostic);
        at
    }
}

/// The innermost `{` between `from` and `to` that is not closed before `to`. Comments
/// and strings are skipped, since a brace in them is not one.
fn open_brace(source: &str, from: usize, to: usize) -> Option<usize> {
    let text = source.get(from..to)?;
    let mut open = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => open.push(from + i),
            '}' => {
                open.pop();
            }
            '"' => {
                for (_, c) in chars.by_ref() {
                    if c == '"' || c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, c)| *c == '/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, c)| *c == '*') => {
                chars.next();
                let mut star = false;
                for (_, c) in chars.by_ref() {
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
            }
            _ => {}
        }
    }
    open.pop()
}

/// How deeply `(` and `not` may nest in one guard. The syntax tree, the checks, the
/// formatter and the graphs walk guards recursively, so an unbounded depth would let a
/// hostile file overflow the stack; no reader follows more than a few levels anyway.
pub(crate) const MAX_GUARD_DEPTH: usize = 32;

/// The start of the first line after the one holding `after` that begins an item or
/// closes the machine (a `}` in the first column).
fn resume_point(source: &str, after: usize) -> Option<usize> {
    let mut line_start = source.get(after..)?.find('\n')? + after + 1;
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

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn comments_inside_items_are_kept_and_left_out_of_spans() {
        let source = "machine M {\n    state a initial // starts here\n    actor x /* who */\n}\n";
        let Ok(file) = parse(source) else {
            panic!("the file parses");
        };
        let comments: Vec<&str> = file.comments.iter().map(|c| &source[c.range()]).collect();
        assert_eq!(comments, ["// starts here", "/* who */"]);
        let spans: Vec<&str> = file
            .machine
            .items
            .iter()
            .map(|item| &source[item.span().range()])
            .collect();
        assert_eq!(spans, ["state a initial", "actor x"]);
    }

    /// The driver parses item by item for recovery; the grammar's own `file` rule is
    /// the language's definition. They must accept exactly the same texts.
    fn assert_agrees(source: &str) {
        use super::{FsmParser, Rule};
        use pest::Parser as _;
        assert_eq!(
            FsmParser::parse(Rule::file, source).is_ok(),
            parse(source).is_ok(),
            "the `file` rule and the driver disagree on:\n{source}"
        );
    }

    const MACHINES: [&str; 3] = [
        include_str!("../../machines/order.fsm"),
        include_str!("../../machines/payment.fsm"),
        include_str!("../../machines/shipment.fsm"),
    ];

    #[test]
    fn the_driver_accepts_what_the_file_rule_accepts() {
        for machine in MACHINES {
            assert!(parse(machine).is_ok());
            assert_agrees(machine);
        }
        for broken in [
            "",
            "machine M {",
            "machine M { } }",
            "state a initial }",
            "machine M { state a initial state }",
            "machine M { on go: a -> { by x } }",
            "machine M { /* open",
            "// only a comment",
            "machine M { state a } // trailing comment",
        ] {
            assert_agrees(broken);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]

        #[test]
        fn the_driver_and_the_file_rule_agree_on_cut_machines(
            which in 0..MACHINES.len(),
            start in 0.0..1.0f64,
            length in 0usize..40,
        ) {
            let machine = MACHINES[which];
            let mut from = (start * machine.len() as f64) as usize;
            while !machine.is_char_boundary(from) {
                from -= 1;
            }
            let mut to = (from + length).min(machine.len());
            while !machine.is_char_boundary(to) {
                to -= 1;
            }
            let cut = format!("{}{}", &machine[..from], &machine[to..]);
            assert_agrees(&cut);
        }
    }

    fn machine_with_guard(guard: &str) -> String {
        format!(
            "machine M {{\n    state a initial\n    state b terminal\n    actor u\n    on go: a -> b {{ by u when {guard} }}\n}}\n"
        )
    }

    #[test]
    fn guards_nest_up_to_the_limit_and_no_further() {
        let depth = super::MAX_GUARD_DEPTH;
        let parens = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("{}x", "not ".repeat(n));
        for guard in [
            parens(depth),
            nots(depth),
            format!("not ({})", nots(depth - 2)),
        ] {
            let source = machine_with_guard(&guard);
            let checked = crate::check(&source);
            let Some(model) = checked.model else {
                panic!(
                    "the deepest allowed guard is fine: {:?}",
                    checked.diagnostics
                );
            };
            // Everything downstream walks the guard recursively, so exercise it all.
            assert!(crate::format(&source).is_ok());
            assert!(!crate::to_dot(&model).is_empty());
            assert!(!crate::to_mermaid(&model).is_empty());
        }
        // Far deeper than pest's own stack guard allows, too: an error, never a crash.
        for guard in [
            parens(depth + 1),
            nots(depth + 1),
            parens(100_000),
            nots(100_000),
        ] {
            let Err(errors) = parse(&machine_with_guard(&guard)) else {
                panic!("a guard deeper than the limit is refused");
            };
            assert_eq!(errors.len(), 1);
            assert!(errors[0].message.contains("nested more than"), "{errors:?}");
        }
    }
}
