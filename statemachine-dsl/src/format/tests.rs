use super::format;

/// Formats a file that parses, and checks on the way that formatting the result again
/// changes nothing.
fn fmt(source: &str) -> String {
    let once =
        format(source).unwrap_or_else(|errors| panic!("{source}\ndoes not parse: {errors:?}"));
    let twice = format(&once).unwrap_or_else(|errors| panic!("{once}\ndoes not parse: {errors:?}"));
    assert_eq!(twice, once, "formatting is not idempotent on\n{source}");
    once
}

/// A machine around `items`, which are given one per line without indentation.
fn machine(items: &str) -> String {
    format!("machine M {{\n{items}\n}}\n")
}

/// The expected output: a machine around `body`, whose lines are already indented.
fn expected(body: &str) -> String {
    format!("machine M {{\n{body}\n}}\n")
}

#[test]
fn order_is_unchanged() {
    let source = include_str!("../../../machines/order.fsm");
    assert_eq!(fmt(source), source);
}

#[test]
fn syntax_errors_are_the_parsers() {
    let source = "machine M {\n    state\n}\n";
    let errors = crate::parse(source).expect_err("a state needs a name");
    assert_eq!(format(source), Err(errors));
}

#[test]
fn one_line_file_is_laid_out() {
    let source = "machine M{state a initial state b terminal actor u \
                  on go:a->b{by u when x do y emit z}}";
    assert_eq!(
        fmt(source),
        expected(
            "    state a initial
    state b terminal

    actor u

    on go: a -> b {
        by u
        when x
        do y
        emit z
    }"
        )
    );
}

#[test]
fn flags_and_roles_align_within_a_run() {
    let source =
        machine("state a initial\nstate longer\n\nactor u owner\nreasons r\nactor v staff");
    assert_eq!(
        fmt(&source),
        expected(
            "    state a      initial
    state longer

    actor u      owner

    reasons r

    actor v staff"
        )
    );
}

#[test]
fn allow_rules_and_one_line_hooks_align() {
    let source =
        machine("allow op in a\nallow longer_op in a, b\nenter a { emit x }\nexit bbb { do y }");
    assert_eq!(
        fmt(&source),
        expected(
            "    allow op        in a
    allow longer_op in a, b

    enter a  { emit x }
    exit bbb { do y }"
        )
    );
}

#[test]
fn calendar_hours_align_with_closed() {
    let source = machine(
        "calendar c { timezone \"UTC\" mon 09:00-12:00 , 13:00-17:00 tue-fri 08:00-18:00 closed 2026-01-01 }",
    );
    assert_eq!(
        fmt(&source),
        expected(
            "    calendar c {
        timezone \"UTC\"
        mon     09:00-12:00, 13:00-17:00
        tue-fri 08:00-18:00
        closed  2026-01-01
    }"
        )
    );
}

#[test]
fn long_lists_wrap_under_their_first_element() {
    let names: Vec<String> = (0..12).map(|i| format!("reason_number_{i}")).collect();
    let sources: Vec<String> = (0..8).map(|i| format!("source_state_{i}")).collect();
    let source = machine(&format!(
        "reasons {}\non go: {} -> target {{ by {} }}",
        names.join(","),
        sources.join(","),
        names.join(",")
    ));
    let out = fmt(&source);
    assert!(out.lines().all(|l| l.len() <= 80), "{out}");
    assert!(
        out.contains(
            "    reasons reason_number_0, reason_number_1, reason_number_2, reason_number_3,\n            reason_number_4,"
        ),
        "{out}"
    );
    assert!(
        out.contains("    on go: source_state_0, source_state_1, source_state_2, source_state_3,\n           source_state_4,"),
        "{out}"
    );
    assert!(
        out.contains("-> target {\n        by reason_number_0,"),
        "{out}"
    );
    assert!(out.contains("\n           reason_number_"), "{out}");
}

#[test]
fn hooks_with_several_clauses_or_too_long_are_blocks() {
    let long: Vec<String> = (0..8).map(|i| format!("notification_{i}")).collect();
    let source = machine(&format!(
        "enter a {{ do x emit y }}\nexit a {{ emit {} }}\nenter b {{}}",
        long.join(", ")
    ));
    assert_eq!(
        fmt(&source),
        expected(
            "    enter a {
        do x
        emit y
    }
    exit a {
        emit notification_0, notification_1, notification_2, notification_3,
             notification_4, notification_5, notification_6, notification_7
    }
    enter b {}"
        )
    );
}

#[test]
fn guards_keep_their_parentheses_and_nothing_more() {
    let source = machine("on go: a -> b { when ((x)or not(y and z)) and w }\non stop: a -> b { }");
    assert_eq!(
        fmt(&source),
        expected(
            "    on go: a -> b {
        when ((x) or not (y and z)) and w
    }
    on stop: a -> b {}"
        )
    );
}

#[test]
fn blank_lines_are_kept_once_forced_between_kinds_and_never_inside_braces() {
    let source = "machine M {\n\n\n    state a\n\n\n\n    state b\n    actor u\n    on go: a -> b {\n\n        by u\n\n\n        do x\n\n    }\n    on back: b -> a {\n        by u\n    }\n\n\n}\n";
    assert_eq!(
        fmt(source),
        expected(
            "    state a

    state b

    actor u

    on go: a -> b {
        by u

        do x
    }
    on back: b -> a {
        by u
    }"
        )
    );
}

#[test]
fn comments_stay_where_they_were() {
    let source = "// before
machine M { // header
    // states
    state a initial // the start

    /* actors */
    actor u

    on go: a -> a {
        by u // who
        // last
    }
    // end
} // after
/* really
   the end */
";
    assert_eq!(fmt(source), source);
}

#[test]
fn comments_between_tokens_move_before_their_line() {
    let source = "machine /* a */ M {
    state x /* b */ initial // c
    on go: x, // d
        x -> x { by u(/* e */reason) }
    enter x { // f
        emit n }
}
";
    assert_eq!(
        fmt(source),
        "/* a */
machine M {
    /* b */
    state x initial // c

    // d
    on go: x, x -> x {
        /* e */
        by u(reason)
    }

    // f
    enter x { emit n }
}
"
    );
}

#[test]
fn a_comment_after_a_multi_line_block_comment_goes_on_its_own_line() {
    let source = "machine M {\n    state a /* one\n    two */ // three\n}\n";
    assert_eq!(
        fmt(source),
        "machine M {\n    state a /* one\n    two */\n    // three\n}\n"
    );
}

#[test]
fn no_line_ends_with_whitespace_and_line_ends_become_newlines() {
    let source =
        "machine M {\r\n    state a   // note   \r\n    /* block  \r\n       text */\r\n}\r\n";
    assert_eq!(
        fmt(source),
        "machine M {\n    state a // note\n    /* block\n       text */\n}\n"
    );
}

#[test]
fn an_empty_machine_keeps_its_braces() {
    assert_eq!(fmt("machine M {}"), "machine M {\n}\n");
    assert_eq!(
        fmt("machine M { /* nothing yet */ }"),
        "machine M { /* nothing yet */\n}\n"
    );
}

#[test]
fn guard_printing_round_trips() {
    for guard in [
        "a",
        "not a",
        "a and b or c",
        "a and (b or c)",
        "not (a or b) and not not c",
    ] {
        let source = machine(&format!("on go: s -> s {{ when {guard} }}"));
        assert!(
            fmt(&source).contains(&format!("        when {guard}\n")),
            "{guard}"
        );
    }
}

#[test]
fn slashes_in_a_string_are_not_a_comment() {
    let source = machine("calendar c { timezone \"Etc//Odd\" mon 09:00-10:00 } // real");
    assert_eq!(
        fmt(&source),
        expected(
            "    calendar c {
        timezone \"Etc//Odd\"
        mon 09:00-10:00
    } // real"
        )
    );
}
