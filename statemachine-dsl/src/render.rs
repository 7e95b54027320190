//! Turning diagnostics into text for people (rustc-like) and JSON for tools.
//!
//! The headline is `file:line:col: severity[CODE]: message`, the form editors and CI logs
//! recognise; the snippet, caret and help under it are drawn by `annotate-snippets`,
//! the renderer rustc itself uses.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, Label, Severity};

/// A source text with its name, able to turn byte offsets into lines and columns.
#[derive(Clone, Debug)]
pub struct SourceFile<'a> {
    name: &'a str,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceFile<'a> {
    pub fn new(name: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name,
            text,
            line_starts,
        }
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// Moves an offset into the text and onto a character boundary, so that spans
    /// from any source (even a stale one) never make the renderer panic.
    fn clamp(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// Renders one diagnostic the way `fsm check` prints it, ending in a newline.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        self.render_with(diagnostic, false)
    }

    /// Renders one diagnostic with terminal colours, as rustc does on a terminal.
    pub fn render_colored(&self, diagnostic: &Diagnostic) -> String {
        self.render_with(diagnostic, true)
    }

    fn render_with(&self, diagnostic: &Diagnostic, color: bool) -> String {
        let (line, column) = self.line_col(diagnostic.primary.span.start);
        let (bold, severity) = if color {
            let severity = match diagnostic.severity {
                Severity::Error => AnsiColor::BrightRed,
                Severity::Warning => AnsiColor::BrightYellow,
            };
            (
                Style::new().bold(),
                Style::new().bold().fg_color(Some(severity.into())),
            )
        } else {
            (Style::new(), Style::new())
        };
        let mut out = format!(
            "{bold}{}:{line}:{column}:{bold:#} {severity}{}[{}]{severity:#}: {bold}{}{bold:#}\n",
            self.name, diagnostic.severity, diagnostic.code, diagnostic.message
        );
        let level = match diagnostic.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let mut snippet = Snippet::source(self.text)
            .line_start(1)
            .fold(true)
            .annotation(
                AnnotationKind::Primary
                    .span(self.range(&diagnostic.primary))
                    .label(diagnostic.primary.message.as_str()),
            );
        for label in &diagnostic.secondary {
            snippet = snippet.annotation(
                AnnotationKind::Context
                    .span(self.range(label))
                    .label(label.message.as_str()),
            );
        }
        let mut group = Group::with_level(level).element(snippet);
        if let Some(help) = &diagnostic.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        out.push_str(&renderer.render(&[group]));
        out.push('\n');
        out
    }

    /// Renders every diagnostic, separated by blank lines.
    pub fn render_all(&self, diagnostics: &[Diagnostic]) -> String {
        diagnostics
            .iter()
            .map(|d| self.render(d))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn range(&self, label: &Label) -> std::ops::Range<usize> {
        let start = self.clamp(label.span.start);
        let end = self.clamp(label.span.end).max(start);
        start..end
    }

    /// The machine-readable form of a diagnostic, one JSON object per line in
    /// `fsm check --message-format json`.
    pub fn to_json(&self, diagnostic: &Diagnostic) -> JsonDiagnostic<'_> {
        let span = |label: &Label| {
            let (line, column) = self.line_col(label.span.start);
            let (end_line, end_column) = self.line_col(label.span.end);
            JsonSpan {
                start: label.span.start,
                end: label.span.end,
                line,
                column,
                end_line,
                end_column,
                label: label.message.clone(),
            }
        };
        JsonDiagnostic {
            file: self.name,
            code: diagnostic.code,
            severity: diagnostic.severity,
            message: diagnostic.message.clone(),
            primary: span(&diagnostic.primary),
            secondary: diagnostic.secondary.iter().map(span).collect(),
            help: diagnostic.help.clone(),
            rendered: self.render(diagnostic),
        }
    }
}

/// A diagnostic as one JSON object.
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub primary: JsonSpan,
    pub secondary: Vec<JsonSpan>,
    pub help: Option<String>,
    /// The same text `fsm check` prints without `--message-format json`.
    pub rendered: String,
}

/// A labelled span with both byte offsets and 1-based line/column positions.
#[derive(Clone, Debug, Serialize)]
pub struct JsonSpan {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub label: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Span;

    #[test]
    fn line_col_counts_characters_from_one() {
        let file = SourceFile::new("x.fsm", "ab\nçd\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        // `ç` is two bytes; `d` is the second character of line 2.
        assert_eq!(file.line_col(5), (2, 2));
        // Offsets past the end and inside a character are clamped, not a panic.
        assert_eq!(file.line_col(4), (2, 1));
        assert_eq!(file.line_col(99), (3, 1));
    }

    #[test]
    fn render_has_headline_snippet_and_help() {
        let source = "machine M {\n    state a initial\n}\n";
        let file = SourceFile::new("m.fsm", source);
        let d = Diagnostic::new(
            Code::Unreachable,
            "state `a` is wrong",
            Label::new(Span::new(22, 23), "here"),
        )
        .with_help("fix it");
        let text = file.render(&d);
        assert!(
            text.starts_with("m.fsm:2:11: error[FSM009]: state `a` is wrong\n"),
            "{text}"
        );
        assert!(text.contains("2 |     state a initial"), "{text}");
        assert!(text.contains("^ here"), "{text}");
        assert!(text.contains("= help: fix it"), "{text}");
    }
}
