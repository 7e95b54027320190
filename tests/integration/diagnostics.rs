//! The diagnostics of `.fsm` files, data-driven: the broken files of `tests/corpus/`
//! are snapshotted as `fsm check` prints them, each `fsmNNN_` file must report its
//! code, every code must be shown by some corpus file, and the real machines must check
//! clean. Every input goes through [`check`], which also asserts the invariants that
//! hold for any file (sorted output, spans inside the text, a model exactly when there
//! is no error).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use statemachine_dsl::{Code, Diagnostic, Severity, SourceFile};

/// What checking one file gave.
struct Outcome {
    diagnostics: Vec<Diagnostic>,
    /// The diagnostics as `fsm check` prints them.
    rendered: String,
    has_model: bool,
}

impl Outcome {
    fn codes(&self) -> BTreeSet<&'static str> {
        self.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks `input` as the file `name`, asserts what holds for every file, and hands the
/// outcome to `expect` for what holds for this one.
fn check(name: &str, input: &str, expect: impl FnOnce(&Outcome)) {
    let validated = statemachine_dsl::check(input);
    let file = SourceFile::new(name, input);
    let outcome = Outcome {
        rendered: file.render_all(&validated.diagnostics),
        has_model: validated.model.is_some(),
        diagnostics: validated.diagnostics,
    };
    invariants(name, input, &file, &outcome);
    expect(&outcome);
}

fn invariants(name: &str, input: &str, file: &SourceFile<'_>, outcome: &Outcome) {
    assert_eq!(
        outcome.has_model,
        !outcome.has_errors(),
        "{name}: a model exactly when there is no error"
    );
    let keys: Vec<_> = outcome
        .diagnostics
        .iter()
        .map(|d| (d.primary.span.start, d.code, d.primary.span.end))
        .collect();
    assert!(keys.is_sorted(), "{name}: diagnostics are in source order");
    for (i, d) in outcome.diagnostics.iter().enumerate() {
        assert_eq!(d.severity, d.code.severity(), "{name}: {d:?}");
        assert!(
            !d.message.ends_with('.') && !d.message.starts_with(char::is_uppercase),
            "{name}: messages are lowercase without a final period: {:?}",
            d.message
        );
        assert!(
            d.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{name}: every diagnostic says how to fix it: {:?}",
            d.message
        );
        for label in std::iter::once(&d.primary).chain(&d.secondary) {
            let span = label.span;
            assert!(
                span.start <= span.end
                    && span.end <= input.len()
                    && input.is_char_boundary(span.start)
                    && input.is_char_boundary(span.end),
                "{name}: span {span:?} of {:?} lies inside the text",
                d.message
            );
        }
        // One problem is reported once: no diagnostic repeats another.
        assert!(
            !outcome.diagnostics[..i]
                .iter()
                .any(|e| e.code == d.code && e.primary == d.primary && e.message == d.message),
            "{name}: reported twice: {}",
            d.message
        );
        let (line, column) = file.line_col(d.primary.span.start);
        let headline = format!(
            "{name}:{line}:{column}: {}[{}]: {}\n",
            d.severity, d.code, d.message
        );
        assert!(
            outcome.rendered.contains(&headline),
            "{name}: rendered with the headline {headline:?}"
        );
    }
}

/// The `FSM007` of a corpus file named `fsm007_no_initial_state.fsm`.
fn code_in_name(file_name: &str) -> Option<&'static str> {
    let prefix = file_name.get(..7)?;
    let is_code = file_name.as_bytes().get(6) == Some(&b'_')
        && prefix.starts_with("fsm")
        && prefix[3..6].bytes().all(|b| b.is_ascii_digit());
    if !is_code {
        return None;
    }
    let code = format!("FSM{}", &prefix[3..6]);
    Code::ALL
        .iter()
        .map(|c| c.as_str())
        .find(|c| *c == code)
        .or_else(|| panic!("{file_name} is named after {code}, which is not a code"))
}

fn stem(path: &Path) -> String {
    tests::file_name(path).trim_end_matches(".fsm").to_owned()
}

/// Runs `test` on every corpus file and reports every failure, not just the first, so
/// that one run shows (and writes `.snap.new` files for) every snapshot that changed.
fn for_each_corpus_file(test: impl Fn(&Path, &str)) {
    let files = tests::corpus();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let source = tests::read(path);
            catch_unwind(AssertUnwindSafe(|| test(path, &source)))
                .err()
                .map(|_| tests::file_name(path))
        })
        .collect();
    assert!(failures.is_empty(), "failed for: {}", failures.join(", "));
}

#[test]
fn the_corpus_is_large_and_every_file_says_what_it_shows() {
    let files = tests::corpus();
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    for path in &files {
        let name = tests::file_name(path);
        assert!(
            code_in_name(&name).is_some() || name.starts_with("many_"),
            "{name}: corpus files are named `fsmNNN_what.fsm` or `many_what.fsm`"
        );
        assert!(
            tests::read(path).starts_with("// "),
            "{name}: starts with a `//` comment saying what it demonstrates"
        );
    }
}

#[test]
fn corpus_snapshots() {
    for_each_corpus_file(|path, source| {
        let name = tests::file_name(path);
        check(&name, source, |outcome| {
            assert!(!outcome.diagnostics.is_empty(), "{name} reports nothing");
            let description = source.lines().next().unwrap_or_default();
            // Named after the file alone (`diagnostics__fsm003_undeclared_state.snap`),
            // so that a new corpus file gets its own snapshot.
            insta::with_settings!({
                prepend_module_to_snapshot => false,
                description => description,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(format!("diagnostics__{}", stem(path)), outcome.rendered);
            });
        });
    });
}

#[test]
fn every_corpus_file_reports_the_code_it_is_named_after() {
    for_each_corpus_file(|path, source| {
        let name = tests::file_name(path);
        let Some(code) = code_in_name(&name) else {
            return;
        };
        check(&name, source, |outcome| {
            assert!(
                outcome.codes().contains(code),
                "{name} is named after {code} but reports {:?}",
                outcome.codes()
            );
            // A warning's file is otherwise clean: the warning alone leaves the file
            // usable.
            let warning = Code::ALL
                .iter()
                .any(|c| c.as_str() == code && c.severity() == Severity::Warning);
            if warning {
                assert!(outcome.has_model, "{name} has errors besides its warning");
            }
        });
    });
}

#[test]
fn every_code_is_shown_by_a_corpus_file() {
    let mut produced = BTreeSet::new();
    for path in tests::corpus() {
        check(&tests::file_name(&path), &tests::read(&path), |outcome| {
            produced.extend(outcome.codes());
        });
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !produced.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "no corpus file in tests/corpus/ shows {missing:?}; add one named `fsmNNN_what.fsm`"
    );
}

#[test]
fn many_problems_are_all_reported_in_one_run() {
    for (file, at_least) in [("many_problems.fsm", 10), ("many_graph_problems.fsm", 5)] {
        let path = tests::workspace_root().join("tests/corpus").join(file);
        check(file, &tests::read(&path), |outcome| {
            assert!(
                outcome.codes().len() >= at_least,
                "{file}: only {:?}",
                outcome.codes()
            );
        });
    }
}

#[test]
fn several_syntax_errors_are_each_reported() {
    let file = "fsm001_several_syntax_errors.fsm";
    let path = tests::workspace_root().join("tests/corpus").join(file);
    check(file, &tests::read(&path), |outcome| {
        assert_eq!(outcome.diagnostics.len(), 3, "{}", outcome.rendered);
        assert_eq!(outcome.codes(), BTreeSet::from(["FSM001"]));
    });
}

#[test]
fn the_machines_check_clean() {
    let machines = tests::machines();
    assert!(!machines.is_empty(), "machines/ has no .fsm file");
    for path in machines {
        let name = tests::file_name(&path);
        check(&name, &tests::read(&path), |outcome| {
            assert!(
                outcome.diagnostics.is_empty(),
                "{name} must check clean:\n{}",
                outcome.rendered
            );
            assert!(outcome.has_model);
        });
    }
}

// ---------------------------------------------------------------------------
// Edge cases, inline.

#[test]
fn an_empty_file_asks_for_a_machine() {
    check("empty.fsm", "", |o| {
        insta::assert_snapshot!(o.rendered, @"
        empty.fsm:1:1: error[FSM001]: expected `machine`, found end of file
          |
        1 |
          | ^ expected `machine`
          |
          = help: a file declares one machine: put its items inside `machine Order { ... }`
        ");
    });
}

#[test]
fn a_name_may_start_with_a_keyword() {
    // `onboarding` starts with `on`, `states_checked` with `state`, `order_status` with
    // `or`: keywords only count as whole words.
    let source = "machine Signup {
    state onboarding initial
    state states_checked terminal
    actor order_status
    on instate: onboarding -> states_checked { by order_status }
}
";
    check("signup.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"");
        assert!(o.has_model);
    });
}

#[test]
fn twenty_four_hundred_may_close_a_span_but_not_open_one() {
    let source = "machine Order {
    state paid initial
    state processing terminal
    actor system
    calendar around_the_clock {
        timezone \"UTC\"
        mon-sat 00:00-24:00
        sun     24:00-24:00
    }
    on start: paid -> processing { by system within around_the_clock }
}
";
    check("clock.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"
        clock.fsm:8:17: error[FSM021]: a span cannot open at `24:00`
          |
        8 |         sun     24:00-24:00
          |                 ^^^^^ the end of the day
          |
          = help: `24:00` only closes a span, such as `18:00-24:00`; a span opening at midnight starts at `00:00`
        ");
    });
}

#[test]
fn positions_count_characters_and_ignore_carriage_returns() {
    // A comment with non-ASCII text and Windows line endings before the error: the
    // column is counted in characters, on the right line.
    let source = "// Bestellung für Kunden\r\nmachine Order {\r\n    state pending initial\r\n    state done terminal\r\n    actor system\r\n    on finish: /* für später */ pending -> dne { by system }\r\n}\r\n";
    check("crlf.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"
        crlf.fsm:6:44: error[FSM003]: state `dne` is not declared
          |
        6 |     on finish: /* für später */ pending -> dne { by system }
          |                                            ^^^ unknown state
          |
          = help: did you mean `done`?
        ");
    });
}

#[test]
fn a_misspelled_reason_flag_names_the_keyword() {
    let source = "machine Order {
    state pending initial
    state cancelled terminal
    actor support staff
    reasons other
    on cancel: pending -> cancelled { by support(reasons) }
}
";
    check("reason.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"
        reason.fsm:6:50: error[FSM001]: expected `reason`, found `reasons`
          |
        6 |     on cancel: pending -> cancelled { by support(reasons) }
          |                                                  ^^^^^^^ expected `reason`
          |
          = help: `(reason)` marks an actor who must give one of the declared reason codes: `by support(reason)`
        ");
    });
}

#[test]
fn an_unterminated_string_is_one_error() {
    let source = "machine Order {
    state paid initial
    state processing terminal
    actor system
    calendar hours {
        timezone \"Europe/Berlin
        mon-fri 08:00-18:00
    }
    on start: paid -> processing { by system within hours }
}
";
    check("string.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @r#"
        string.fsm:6:18: error[FSM001]: string is never closed
          |
        6 |         timezone "Europe/Berlin
          |                  ^^^^^^^^^^^^^^ this string has no closing `"`
          |
          = help: close it on the same line, such as `timezone "Europe/Berlin"`
        "#);
    });
}

#[test]
fn a_syntax_error_hides_the_checks_until_it_is_fixed() {
    // The checks need a syntax tree, so `nowhere` is not reported as undeclared while
    // the file does not parse; it will be on the next run.
    let source = "machine Order {
    state pending initial
    state Done terminal
    actor system
    on finish: pending -> nowhere { by system }
}
";
    check("both.fsm", source, |o| {
        assert_eq!(o.codes(), BTreeSet::from(["FSM001"]));
        insta::assert_snapshot!(o.rendered, @"
        both.fsm:3:11: error[FSM001]: expected a name, found `Done`
          |
        3 |     state Done terminal
          |           ^^^^ expected a name
          |
          = help: names are lowercase with underscores: `done`
        ");
    });
}

#[test]
fn a_keyword_at_the_start_of_the_next_clause_points_at_the_unfinished_line() {
    let source = "machine Order {
    state pending initial
    state paid terminal
    actor customer owner
    on pay: pending -> paid {
        by customer,
        do capture_payment
    }
}
";
    check("comma.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"
        comma.fsm:7:9: error[FSM001]: expected a name, found `do`
          |
        7 |         do capture_payment
          |         ^^ expected a name
          |
          = help: `,` at the end of the line before must be followed by a name
        ");
    });
}

#[test]
fn a_guarded_declaration_does_not_shadow_a_later_one() {
    // The reference machine's `cancel` from `confirmed`: the guarded one by `system`
    // first, then the unguarded one; no shadowing either way round for other actors.
    let source = "machine Order {
    state pending initial
    state confirmed
    state cancelled terminal
    actor customer owner
    actor system
    on confirm: pending -> confirmed { by system }
    on cancel: confirmed -> cancelled { by system when payment_failed }
    on cancel: pending, confirmed -> cancelled { by customer, system }
}
";
    check("guarded.fsm", source, |o| {
        assert!(o.diagnostics.is_empty(), "{}", o.rendered);
    });
}

#[test]
fn three_initial_states_are_reported_against_the_first() {
    let source = "machine Order {
    state draft initial
    state pending initial
    state confirmed initial
    state done terminal
    actor system
    on finish: draft, pending, confirmed -> done { by system }
}
";
    check("initials.fsm", source, |o| {
        insta::assert_snapshot!(o.rendered, @"
        initials.fsm:3:19: error[FSM008]: states `draft` and `pending` are both initial
          |
        2 |     state draft initial
          |           ----- first initial state
        3 |     state pending initial
          |                   ^^^^^^^ second initial state
          |
          = help: a machine starts in exactly one state; remove one `initial`

        initials.fsm:4:21: error[FSM008]: states `draft` and `confirmed` are both initial
          |
        2 |     state draft initial
          |           ----- first initial state
        3 |     state pending initial
        4 |     state confirmed initial
          |                     ^^^^^^^ second initial state
          |
          = help: a machine starts in exactly one state; remove one `initial`
        ");
    });
}

#[test]
fn every_file_with_a_line_missing_still_gets_well_formed_diagnostics() {
    // The most common broken file is a good one with a line lost in editing: whatever
    // the line, `check` asserts its invariants (spans inside the text, source order,
    // nothing reported twice) and nothing panics.
    for path in tests::machines().into_iter().chain(tests::corpus()) {
        let name = tests::file_name(&path);
        let source = tests::read(&path);
        let lines: Vec<&str> = source.lines().collect();
        for skip in 0..lines.len() {
            let text: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, line)| format!("{line}\n"))
                .collect();
            check(&name, &text, |_| {});
        }
    }
}
