//! Parse and validate a generated machine of 100, 500 and 2,000 states.
//!
//! Timings on shared machines drift from run to run, so the figure that matters is a
//! ratio against a baseline measured in the same run: `parse` is the baseline, and the
//! report after criterion's groups prints `check / parse` for every size and the
//! per-state cost of 2,000 states against that of 100 (1.0 means validation scales
//! linearly). The report comes from a plain timed loop in this process, so it is
//! printed even when criterion runs with `--quick` or in test mode.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use statemachine_dsl::{SourceFile, ast, check, parse, validate};

/// The sizes benchmarked; the first and last give the scaling ratio.
const SIZES: [usize; 3] = [100, 500, 2_000];

/// The terminal states every generated machine ends in.
const TERMINALS: [&str; 4] = ["completed", "cancelled", "rejected", "archived"];

/// The guards a forward step picks from, so that guards repeat as they do in real files.
const GUARDS: [&str; 7] = [
    "documents_complete",
    "stock_available",
    "payment_authorized",
    "address_verified",
    "credit_ok",
    "identity_confirmed",
    "manual_review_done",
];

/// Writes a machine of `states` states (at least 8) that checks clean: one initial
/// state, four terminal ones, every state reachable from the initial one and able to
/// reach a terminal one. It uses every kind of item, and reuses event names across
/// states, the way a long workflow does, so the per-(state, event) checks see realistic
/// collisions rather than a file of unique names.
fn generate(states: usize) -> String {
    assert!(
        states >= 8,
        "a generated machine needs room for its terminals"
    );
    let working = states - TERMINALS.len();
    let s = |i: usize| format!("step_{i:04}");
    let mut out = String::with_capacity(states * 400);
    // `write!` into a `String` cannot fail; the results are ignored for that reason.
    let _ = writeln!(out, "// Generated: {states} states.\nmachine Generated {{");
    for i in 0..working {
        let flag = if i == 0 { " initial" } else { "" };
        let _ = writeln!(out, "    state {}{flag}", s(i));
    }
    for t in TERMINALS {
        let _ = writeln!(out, "    state {t} terminal");
    }
    out.push_str(
        "
    actor customer owner
    actor support  staff
    actor admin    staff
    actor system
    actor reviewer

    reasons customer_request, duplicate, fraud_suspected, out_of_stock, sla_breach, other

    calendar business_hours {
        timezone \"Europe/Berlin\"
        mon-fri 08:00-12:00, 13:00-18:00
        sat     09:00-13:00
        closed  2026-12-25, 2026-12-26, 2027-01-01
    }

",
    );
    for i in 0..working {
        let guard = GUARDS[i % GUARDS.len()];
        let next = if i + 1 == working {
            "completed".to_owned()
        } else {
            s(i + 1)
        };
        // A guarded fast track that skips a step comes before the unguarded ordinary
        // step of the same event, which is the order the shadowing rule allows.
        if i % 5 == 0 && i + 2 < working {
            let _ = writeln!(
                out,
                "    on advance: {} -> {} {{\n        by system, reviewer\n        when {guard} and not fraud_hold\n        do fast_track_{i}\n        emit fast_tracked\n    }}",
                s(i),
                s(i + 2),
            );
        }
        let within = if i % 7 == 3 {
            "\n        within business_hours"
        } else {
            ""
        };
        let undo = if i % 4 == 1 {
            format!(" undo release_{i}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    on advance: {} -> {next} {{\n        by customer, system, support(reason)\n        when {guard} or (credit_ok and stock_available){within}\n        do record_step, reserve_{i}{undo}\n        emit step_advanced\n    }}",
            s(i),
        );
        // Cancellation covers disjoint groups of three states, so that no unguarded
        // `cancel` shadows another for the same state.
        if i % 3 == 0 {
            let group: Vec<String> = (i..(i + 3).min(working)).map(s).collect();
            let _ = writeln!(
                out,
                "    on cancel: {} -> cancelled {{\n        by customer, support(reason), admin(reason)\n        do release_holds\n    }}",
                group.join(", "),
            );
        }
        if i % 10 == 5 {
            let _ = writeln!(
                out,
                "    on reject: {} -> rejected {{\n        by reviewer\n        when not documents_complete or fraud_hold\n        do flag_account undo unflag_account\n        emit application_rejected\n    }}",
                s(i),
            );
        }
        // Loops back are what make "can every state finish?" a graph question.
        if i % 50 == 49 {
            let _ = writeln!(
                out,
                "    on send_back: {} -> {} {{\n        by reviewer, support(reason)\n        when manual_review_done\n        within business_hours\n        emit sent_back\n    }}",
                s(i),
                s(i - 25),
            );
        }
        if i % 100 == 99 {
            let _ = writeln!(
                out,
                "    override force_complete: {} -> completed {{\n        by admin(reason)\n        do close_case\n        emit force_completed\n    }}",
                s(i),
            );
        }
    }
    out.push_str(
        "
    override reopen: cancelled, rejected -> step_0000 {
        by support(reason), admin(reason)
        emit case_reopened
    }
    override archive: completed -> archived {
        by admin(reason)
        do export_case undo delete_export
    }

    enter cancelled { do release_holds emit case_cancelled }
    enter completed { emit case_completed }
    exit  rejected  { emit case_reopened_after_rejection }
",
    );
    for i in (1..working).step_by(20) {
        let _ = writeln!(out, "    enter {} {{ emit entered_{i} }}", s(i));
    }
    for i in (0..working).step_by(40) {
        let _ = writeln!(out, "    exit {} {{ do audit_exit_{i} }}", s(i));
    }
    for (op, start) in (0..working).step_by(25).enumerate() {
        let window: Vec<String> = (start..(start + 10).min(working)).map(s).collect();
        let _ = writeln!(out, "    allow operation_{op} in {}", window.join(", "));
    }
    out.push_str("    allow add_note in step_0000, completed, cancelled, rejected, archived\n}\n");
    out
}

/// Fails the run unless the machine checks clean, so that every figure below measures
/// the path a correct file takes, not one that stops early at an error.
fn assert_clean(states: usize, source: &str) {
    let checked = check(source);
    if !checked.diagnostics.is_empty() {
        let name = format!("generated_{states}.fsm");
        let rendered = SourceFile::new(&name, source).render_all(&checked.diagnostics);
        panic!("the generated {states}-state machine is not clean:\n{rendered}");
    }
    let model = checked.model.expect("a clean machine has a model");
    assert_eq!(model.states.len(), states);
}

fn criterion_groups(c: &mut Criterion, sources: &[(usize, String)]) {
    let mut group = c.benchmark_group("parse_validate");
    for (states, source) in sources {
        let file = parse(source).expect("the generated machine parses");
        group.throughput(Throughput::Elements(*states as u64));
        group.bench_with_input(BenchmarkId::new("parse", states), source, |b, src| {
            b.iter(|| parse(black_box(src)))
        });
        group.bench_with_input(BenchmarkId::new("validate", states), &file, |b, file| {
            b.iter(|| validate(black_box(file)))
        });
        group.bench_with_input(BenchmarkId::new("check", states), source, |b, src| {
            b.iter(|| check(black_box(src)))
        });
    }
    group.finish();
}

/// The median wall time of `runs` calls of `f`, after one warm-up call.
/// The median times of `parse`, `validate` and `check` of one source. The three are
/// timed in turn within each round, so that a slow spell of a shared machine slows all
/// three alike instead of skewing their ratios.
fn medians(runs: usize, source: &str, file: &ast::File) -> [Duration; 3] {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let mut rounds: [Vec<Duration>; 3] = Default::default();
    // One round to warm caches and the allocator, not counted.
    for round in 0..=runs {
        let times = [
            time(&mut || drop(black_box(parse(black_box(source))))),
            time(&mut || drop(black_box(validate(black_box(file))))),
            time(&mut || drop(black_box(check(black_box(source))))),
        ];
        if round > 0 {
            for (all, t) in rounds.iter_mut().zip(times) {
                all.push(t);
            }
        }
    }
    rounds.map(|mut times| {
        times.sort_unstable();
        times[times.len() / 2]
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The same-run ratios, from a timed loop of our own.
fn report_ratios(sources: &[(usize, String)], runs: usize) {
    println!("\nSame-run ratios (median of {runs} interleaved runs; parse is the baseline):");
    let mut per_state_check = Vec::new();
    let mut per_state_validate = Vec::new();
    for (states, source) in sources {
        let file = parse(source).expect("the generated machine parses");
        let [parse_time, validate_time, check_time] = medians(runs, source, &file);
        println!(
            "check({states} states) = {:.2} ms, parse = {:.2} ms, validate = {:.2} ms, \
             ratio check/parse = {:.2}, validate/parse = {:.2}",
            ms(check_time),
            ms(parse_time),
            ms(validate_time),
            check_time.as_secs_f64() / parse_time.as_secs_f64(),
            validate_time.as_secs_f64() / parse_time.as_secs_f64(),
        );
        per_state_check.push((*states, check_time.as_secs_f64() / *states as f64));
        per_state_validate.push((*states, validate_time.as_secs_f64() / *states as f64));
    }
    let scaling = |per_state: &[(usize, f64)]| {
        let (small, small_time) = per_state[0];
        let (large, large_time) = per_state[per_state.len() - 1];
        (small, large, large_time / small_time)
    };
    let (small, large, check_scaling) = scaling(&per_state_check);
    let (_, _, validate_scaling) = scaling(&per_state_validate);
    println!(
        "per-state time {large} vs {small} states: check = {check_scaling:.2}, \
         validate = {validate_scaling:.2} (1.00 is linear; {:.0} would be quadratic)",
        large as f64 / small as f64,
    );
}

fn main() {
    let sources: Vec<(usize, String)> = SIZES.iter().map(|&n| (n, generate(n))).collect();
    for (states, source) in &sources {
        assert_clean(*states, source);
    }
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &sources);
    criterion.final_summary();
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) the binary
    // is only being smoke-tested, so one run per measurement is enough.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    report_ratios(&sources, if benchmarking { 31 } else { 1 });
}
