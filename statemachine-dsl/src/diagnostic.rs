//! Diagnostics: what went wrong, where, how bad, and how to fix it.
//!
//! Every diagnostic carries a stable [`Code`]; the codes are part of the language's
//! contract (docs/language.md lists each with a broken example and its fix), so a code
//! is never reused for a different problem.

use serde::Serialize;
use std::fmt;

use crate::ast::Span;

/// How bad a problem is. Errors make a file unusable; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// The stable code of a diagnostic (`FSM001`...).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed: `FSM007`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity every diagnostic with this code has.
            pub const fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// A one-line description of the problem the code stands for.
            pub const fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    Syntax = "FSM001", Error, "syntax error";
    Duplicate = "FSM002", Error, "a name is declared twice";
    UndeclaredState = "FSM003", Error, "a state is used but not declared";
    UndeclaredActor = "FSM004", Error, "an actor is used but not declared";
    UndeclaredReason = "FSM005", Error, "a reason is required but the machine declares no reasons";
    UndeclaredCalendar = "FSM006", Error, "a calendar is used but not declared";
    NoInitial = "FSM007", Error, "no state is initial";
    SeveralInitial = "FSM008", Error, "more than one state is initial";
    Unreachable = "FSM009", Error, "a state cannot be reached from the initial state";
    DeadEnd = "FSM010", Error, "a non-terminal state has no way out";
    NoTerminalReachable = "FSM011", Error, "no terminal state can be reached from a state";
    LeavesTerminal = "FSM012", Error, "an ordinary transition leaves a terminal state";
    OverrideNotStaff = "FSM013", Error, "an override names an actor that is not staff";
    OverrideWithoutReason = "FSM014", Error, "an override names an actor without `(reason)`";
    NoActors = "FSM015", Error, "a transition has no `by` clause";
    Shadowed = "FSM016", Error, "a declaration can never be chosen because an unguarded one comes first";
    SelfUndo = "FSM017", Error, "an action is its own undo";
    UnknownTimezone = "FSM018", Error, "a calendar names an unknown time zone";
    BadTimeSpan = "FSM019", Error, "an opening span is empty or inverted";
    BadDate = "FSM020", Error, "a closed date is not a real date";
    BadTime = "FSM021", Error, "a time is not a valid `HH:MM`";
    InvertedDays = "FSM022", Error, "a day range runs backwards";
    RepeatedClause = "FSM023", Error, "a `by`, `when` or `within` clause appears twice in one declaration";
    RepeatedEntry = "FSM024", Error, "a list names the same thing twice";
    RustName = "FSM025", Error, "a name cannot become a Rust identifier, or two names become the same one";
    UnusedActor = "FSM101", Warning, "an actor is declared but never named in a `by` clause";
    UnusedCalendar = "FSM102", Warning, "a calendar is declared but no transition is `within` it";
    UnusedReasons = "FSM103", Warning, "reasons are declared but no actor is required to give one";
    OverlappingHours = "FSM104", Warning, "opening spans of the same day overlap";
    HookNeverRuns = "FSM105", Warning, "a hook is on a state that no transition enters, or leaves";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A span with a short note attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

impl Label {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Label {
            span,
            message: message.into(),
        }
    }
}

/// One problem in one file. Its `Display` is the one-line form without a location
/// (`error[FSM003]: state `x` is not declared`); [`crate::SourceFile::render`] gives
/// the full form with file, line, column and snippet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{severity}[{code}]: {message}")]
#[non_exhaustive]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// The headline, lowercase and without a final period.
    pub message: String,
    /// Where the problem is.
    pub primary: Label,
    /// Related places (the first declaration of a duplicate, say).
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's own severity.
    pub fn new(code: Code, message: impl Into<String>, primary: Label) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary,
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn with_secondary(mut self, label: Label) -> Self {
        self.secondary.push(label);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics into the order they are shown: by position, then by code.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.primary.span.start, d.code, d.primary.span.end));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_is_an_error_with_a_one_line_display() {
        let d = Diagnostic::new(
            Code::UndeclaredState,
            "state `x` is not declared",
            Label::new(Span::new(0, 1), "unknown state"),
        );
        let error: &dyn std::error::Error = &d;
        assert_eq!(
            error.to_string(),
            "error[FSM003]: state `x` is not declared"
        );
    }

    #[test]
    fn codes_are_unique_and_their_severity_follows_the_numbering() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            let number: u32 = code.as_str()["FSM".len()..].parse().expect("FSMnnn");
            let warning = number > 100;
            assert_eq!(code.severity() == Severity::Warning, warning, "{code}");
        }
    }
}
