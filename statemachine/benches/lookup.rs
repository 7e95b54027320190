//! The generated transition lookup of `order.fsm` against `smlang` and `rust-fsm`.
//!
//! All three implement the same machine: the 9 states of `machines/order.fsm` and its
//! (state, event) -> target edges, with actors, guards, actions and hooks left out. What
//! is measured is the lookup alone: given a state and an event, find the next state or
//! find that there is none. The workload is one fixed pseudo-random sequence of
//! [`WORKLOAD`] (state, event) pairs, valid and invalid mixed, built before anything is
//! timed; one pass looks up every pair and adds the target's index (or [`NONE`]) to a
//! checksum that goes through `black_box`. Before timing, the three are checked to give
//! the same target for every one of the 99 pairs, and the same checksum for the
//! workload, so that the comparison is of equal work.
//!
//! How each implementation is asked, the cheapest call of its API that is a lookup from
//! an arbitrary state:
//!
//! - generated: `Machine::candidates(state, event)`, the table lookup the engine makes;
//!   its first candidate's `to` is the target (guards are ignored here, and where a
//!   pair has several declarations, as `confirmed` + `cancel` does, they share a target).
//! - `smlang`: its only transition API is `StateMachine::process_event(&mut self, ..)`,
//!   which also calls the context's (default, empty) logging, entry, exit and
//!   transition callbacks. A machine is built in the given state with the `const fn`
//!   `StateMachine::new_with_state(Context, state)`; the context is a unit struct, so
//!   building it costs nothing once inlined, and the callbacks are empty default
//!   methods, so what remains is its generated `match self.state { .. match event }`.
//! - `rust-fsm`: its DSL generates `StateMachineImpl::transition(&State, &Input) ->
//!   Option<State>`, a pure `match (state, input)`, which is called directly. The
//!   `StateMachine::from_state(state).consume(&input)` wrapper would also call the
//!   `output` function (empty here) and store the new state; `transition` is what
//!   `consume` uses to decide.
//!
//! Each implementation turns its own target enum into the shared index (file order of
//! `order.fsm`) with a `match`, since `smlang` orders its enum's variants by a hash map
//! and `rust-fsm` alphabetically; a `match` from a constant arm to a constant folds away.
//!
//! Timings on shared machines drift from run to run, so the figure that matters is a
//! ratio measured in the same run: after criterion's groups, interleaved rounds time
//! the three in turn (the order rotating from round to round) and print their medians
//! and `generated / fastest other`. The goal is a ratio of at most [`GOAL`]. The report
//! comes from a plain timed loop in this process, so it is printed even when criterion
//! runs with `--quick` or in test mode.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use statemachine::Machine as _;

/// The machine under test, as the `machine!` macro generates it.
mod order {
    statemachine::machine!("../machines/order.fsm");
}

/// The same states and edges in `smlang`'s DSL. `confirmed` + `cancel` is declared twice
/// in `order.fsm` (a guarded and an unguarded declaration, both to `cancelled`); without
/// guards that is one edge.
mod smlang_order {
    smlang::statemachine! {
        derive_states: [Clone, Copy, Debug],
        derive_events: [Clone, Copy, Debug],
        transitions: {
            *Pending + Confirm = Confirmed,
            Pending + Cancel = Cancelled,
            Confirmed + Pay = Paid,
            Confirmed + Cancel = Cancelled,
            Paid + StartProcessing = Processing,
            Paid + Refund = Refunded,
            Processing + Ship = Shipped,
            Processing + Refund = Refunded,
            Shipped + Deliver = Delivered,
            Shipped + ReturnToSender = Returned,
            Delivered + ReturnDelivered = Returned,
            Cancelled + Reopen = Pending,
            Refunded + ReverseRefund = Paid,
            Returned + Refund = Refunded,
        },
    }

    /// No guards, no actions: every callback keeps its empty default.
    pub struct Context;

    impl StateMachineContext for Context {}
}

// The same states and edges in `rust-fsm`'s DSL.
rust_fsm::state_machine! {
    #[derive(Clone, Copy, Debug)]
    rust_fsm_order(Pending)

    Pending => {
        Confirm => Confirmed,
        Cancel => Cancelled,
    },
    Confirmed => {
        Pay => Paid,
        Cancel => Cancelled,
    },
    Paid => {
        StartProcessing => Processing,
        Refund => Refunded,
    },
    Processing => {
        Ship => Shipped,
        Refund => Refunded,
    },
    Shipped => {
        Deliver => Delivered,
        ReturnToSender => Returned,
    },
    Delivered(ReturnDelivered) => Returned,
    Cancelled(Reopen) => Pending,
    Refunded(ReverseRefund) => Paid,
    Returned(Refund) => Refunded,
}

/// The number of (state, event) pairs in the workload.
const WORKLOAD: usize = 4096;

/// The checksum's value for a pair without a transition (states are 0 to 8).
const NONE: u32 = 9;

/// The ratio `generated / fastest other` aimed for.
const GOAL: f64 = 1.2;

/// How many passes over the workload one sample of the interleaved rounds times, so
/// that a sample lasts far longer than the clock's resolution.
const PASSES_PER_SAMPLE: usize = 64;

/// The three implementations, in the order of [`Workloads`] and of the report.
const NAMES: [&str; 3] = ["generated", "smlang", "rust_fsm"];

// The shared order of states and events: that of `order.fsm`. Each implementation
// lists its own enum's variants in this order; `check_orders` compares the names.

const GENERATED_STATES: [order::State; 9] = {
    use order::State::*;
    [
        Pending, Confirmed, Paid, Processing, Shipped, Delivered, Cancelled, Refunded, Returned,
    ]
};
const GENERATED_EVENTS: [order::Event; 11] = {
    use order::Event::*;
    [
        Confirm,
        Pay,
        Cancel,
        StartProcessing,
        Ship,
        Deliver,
        Refund,
        ReturnToSender,
        ReturnDelivered,
        Reopen,
        ReverseRefund,
    ]
};
const SMLANG_STATES: [smlang_order::States; 9] = {
    use smlang_order::States::*;
    [
        Pending, Confirmed, Paid, Processing, Shipped, Delivered, Cancelled, Refunded, Returned,
    ]
};
const SMLANG_EVENTS: [smlang_order::Events; 11] = {
    use smlang_order::Events::*;
    [
        Confirm,
        Pay,
        Cancel,
        StartProcessing,
        Ship,
        Deliver,
        Refund,
        ReturnToSender,
        ReturnDelivered,
        Reopen,
        ReverseRefund,
    ]
};
const RUST_FSM_STATES: [rust_fsm_order::State; 9] = {
    use rust_fsm_order::State::*;
    [
        Pending, Confirmed, Paid, Processing, Shipped, Delivered, Cancelled, Refunded, Returned,
    ]
};
const RUST_FSM_EVENTS: [rust_fsm_order::Input; 11] = {
    use rust_fsm_order::Input::*;
    [
        Confirm,
        Pay,
        Cancel,
        StartProcessing,
        Ship,
        Deliver,
        Refund,
        ReturnToSender,
        ReturnDelivered,
        Reopen,
        ReverseRefund,
    ]
};

/// The generated lookup: the index of the target state, or [`NONE`].
#[inline]
fn generated_next(state: order::State, event: order::Event) -> u32 {
    match order::Machine::candidates(state, event).first() {
        Some(spec) => {
            use order::State::*;
            match spec.to {
                Pending => 0,
                Confirmed => 1,
                Paid => 2,
                Processing => 3,
                Shipped => 4,
                Delivered => 5,
                Cancelled => 6,
                Refunded => 7,
                Returned => 8,
            }
        }
        None => NONE,
    }
}

/// `smlang`'s lookup: the index of the target state, or [`NONE`].
#[inline]
fn smlang_next(state: smlang_order::States, event: smlang_order::Events) -> u32 {
    let mut machine = smlang_order::StateMachine::new_with_state(smlang_order::Context, state);
    match machine.process_event(event) {
        Ok(target) => {
            use smlang_order::States::*;
            match target {
                Pending => 0,
                Confirmed => 1,
                Paid => 2,
                Processing => 3,
                Shipped => 4,
                Delivered => 5,
                Cancelled => 6,
                Refunded => 7,
                Returned => 8,
            }
        }
        Err(_) => NONE,
    }
}

/// `rust-fsm`'s lookup: the index of the target state, or [`NONE`].
#[inline]
fn rust_fsm_next(state: rust_fsm_order::State, event: rust_fsm_order::Input) -> u32 {
    use rust_fsm::StateMachineImpl as _;
    match rust_fsm_order::Impl::transition(&state, &event) {
        Some(target) => {
            use rust_fsm_order::State::*;
            match target {
                Pending => 0,
                Confirmed => 1,
                Paid => 2,
                Processing => 3,
                Shipped => 4,
                Delivered => 5,
                Cancelled => 6,
                Refunded => 7,
                Returned => 8,
            }
        }
        None => NONE,
    }
}

/// One pass of the generated lookup over the workload: the sum of the targets.
#[inline(never)]
fn generated_pass(work: &[(order::State, order::Event)]) -> u64 {
    work.iter().fold(0, |sum, &(state, event)| {
        sum + u64::from(generated_next(state, event))
    })
}

/// One pass of `smlang`'s lookup over the workload: the sum of the targets.
#[inline(never)]
fn smlang_pass(work: &[(smlang_order::States, smlang_order::Events)]) -> u64 {
    work.iter().fold(0, |sum, &(state, event)| {
        sum + u64::from(smlang_next(state, event))
    })
}

/// One pass of `rust-fsm`'s lookup over the workload: the sum of the targets.
#[inline(never)]
fn rust_fsm_pass(work: &[(rust_fsm_order::State, rust_fsm_order::Input)]) -> u64 {
    work.iter().fold(0, |sum, &(state, event)| {
        sum + u64::from(rust_fsm_next(state, event))
    })
}

/// The workload as (state index, event index) pairs, and as each implementation's enums.
struct Workloads {
    indices: Vec<(usize, usize)>,
    generated: Vec<(order::State, order::Event)>,
    smlang: Vec<(smlang_order::States, smlang_order::Events)>,
    rust_fsm: Vec<(rust_fsm_order::State, rust_fsm_order::Input)>,
}

impl Workloads {
    fn new(indices: Vec<(usize, usize)>) -> Self {
        Workloads {
            generated: indices
                .iter()
                .map(|&(s, e)| (GENERATED_STATES[s], GENERATED_EVENTS[e]))
                .collect(),
            smlang: indices
                .iter()
                .map(|&(s, e)| (SMLANG_STATES[s], SMLANG_EVENTS[e]))
                .collect(),
            rust_fsm: indices
                .iter()
                .map(|&(s, e)| (RUST_FSM_STATES[s], RUST_FSM_EVENTS[e]))
                .collect(),
            indices,
        }
    }

    /// One pass of implementation `which` (an index into [`NAMES`]).
    fn pass(&self, which: usize) -> u64 {
        match which {
            0 => generated_pass(black_box(&self.generated)),
            1 => smlang_pass(black_box(&self.smlang)),
            _ => rust_fsm_pass(black_box(&self.rust_fsm)),
        }
    }
}

/// Marsaglia's xorshift64: deterministic, and no crate needed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n`; the bias of a modulo is irrelevant for a workload.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The `Debug` spellings of a list of variants.
fn names<T: std::fmt::Debug>(list: &[T]) -> Vec<String> {
    list.iter().map(|item| format!("{item:?}")).collect()
}

/// The three enums list the same names in the same order, so that an index means the
/// same state or event to all three, and the generated enums' names are all of them.
fn check_orders() {
    let states = names(&GENERATED_STATES);
    assert_eq!(
        names(&order::State::ALL),
        states,
        "the shared order is that of order.fsm"
    );
    assert_eq!(names(&SMLANG_STATES), states);
    assert_eq!(names(&RUST_FSM_STATES), states);
    let events = names(&GENERATED_EVENTS);
    let (mut all, mut listed) = (names(&order::Event::ALL), events.clone());
    all.sort();
    listed.sort();
    assert_eq!(all, listed, "the events are those of order.fsm");
    assert_eq!(names(&SMLANG_EVENTS), events);
    assert_eq!(names(&RUST_FSM_EVENTS), events);
}

/// Checks that the three agree on all 99 pairs and that they have the edges of
/// `order.fsm`; returns the pairs that have a transition.
fn check_agreement() -> Vec<(usize, usize)> {
    let mut valid = Vec::new();
    for s in 0..GENERATED_STATES.len() {
        for e in 0..GENERATED_EVENTS.len() {
            let generated = generated_next(GENERATED_STATES[s], GENERATED_EVENTS[e]);
            let smlang = smlang_next(SMLANG_STATES[s], SMLANG_EVENTS[e]);
            let rust_fsm = rust_fsm_next(RUST_FSM_STATES[s], RUST_FSM_EVENTS[e]);
            let pair = (GENERATED_STATES[s], GENERATED_EVENTS[e]);
            assert_eq!(generated, smlang, "generated and smlang differ on {pair:?}");
            assert_eq!(
                generated, rust_fsm,
                "generated and rust-fsm differ on {pair:?}"
            );
            if generated != NONE {
                valid.push((s, e));
            }
        }
    }
    // Every declaration of the generated table is one of those edges.
    let mut declared: Vec<_> = order::Machine::TRANSITIONS
        .iter()
        .map(|spec| (spec.from, spec.event))
        .collect();
    declared.dedup();
    assert_eq!(declared.len(), valid.len(), "one edge per declared pair");
    valid
}

/// [`WORKLOAD`] pairs: half drawn from the edges, half from all 99 pairs (of which some
/// are edges too), in a fixed pseudo-random order.
fn workload(valid: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    (0..WORKLOAD)
        .map(|_| {
            if rng.next() & 1 == 0 {
                valid[rng.below(valid.len())]
            } else {
                (
                    rng.below(GENERATED_STATES.len()),
                    rng.below(GENERATED_EVENTS.len()),
                )
            }
        })
        .collect()
}

/// The three checksums of the workload are equal; returns it.
fn check_checksums(work: &Workloads) -> u64 {
    let sums = [work.pass(0), work.pass(1), work.pass(2)];
    assert!(
        sums.iter().all(|&s| s == sums[0]),
        "the checksums differ: {sums:?}"
    );
    sums[0]
}

fn criterion_groups(c: &mut Criterion, work: &Workloads) {
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(WORKLOAD as u64));
    for (which, name) in NAMES.iter().enumerate() {
        group.bench_function(*name, |b| b.iter(|| black_box(work.pass(which))));
    }
    group.finish();
}

/// The median time of a sample ([`PASSES_PER_SAMPLE`] passes) of each implementation. Every round times all three,
/// in an order that rotates through the six permutations, so that a slow spell of a
/// shared machine, or the position in a round, weighs on all three alike.
fn medians(work: &Workloads, rounds: usize) -> [Duration; 3] {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
        [1, 0, 2],
        [0, 2, 1],
    ];
    let mut times: [Vec<Duration>; 3] = Default::default();
    // One round to warm caches and branch predictors, not counted.
    for round in 0..=rounds {
        for which in ORDERS[round % ORDERS.len()] {
            let start = Instant::now();
            for _ in 0..PASSES_PER_SAMPLE {
                black_box(work.pass(which));
            }
            let elapsed = start.elapsed();
            if round > 0 {
                times[which].push(elapsed);
            }
        }
    }
    times.map(|mut t| {
        t.sort_unstable();
        t[t.len() / 2]
    })
}

/// Nanoseconds per lookup of a sample's time.
fn ns(sample: Duration) -> f64 {
    sample.as_secs_f64() * 1e9 / (PASSES_PER_SAMPLE * WORKLOAD) as f64
}

/// The same-run ratios, from a timed loop of our own.
fn report_ratios(work: &Workloads, rounds: usize) {
    let valid = work
        .generated
        .iter()
        .filter(|&&(s, e)| !order::Machine::candidates(s, e).is_empty())
        .count();
    println!(
        "\nSame-run ratios (median of {rounds} interleaved rounds of {PASSES_PER_SAMPLE} \
         passes over {WORKLOAD} pairs, {valid} of them with a transition):"
    );
    let [generated, smlang, rust_fsm] = medians(work, rounds);
    println!(
        "lookup: generated = {:.2} ns, smlang = {:.2} ns, rust_fsm = {:.2} ns per pair",
        ns(generated),
        ns(smlang),
        ns(rust_fsm),
    );
    let ratio = |other: Duration| generated.as_secs_f64() / other.as_secs_f64();
    let (fastest, fastest_time) = if smlang <= rust_fsm {
        ("smlang", smlang)
    } else {
        ("rust_fsm", rust_fsm)
    };
    println!(
        "ratio generated/smlang = {:.2}, generated/rust_fsm = {:.2}",
        ratio(smlang),
        ratio(rust_fsm),
    );
    let verdict = if ratio(fastest_time) <= GOAL {
        "within"
    } else {
        "NOT within"
    };
    println!(
        "ratio generated/fastest-other ({fastest}) = {:.2} ({verdict} the goal of {GOAL:.2})",
        ratio(fastest_time),
    );
}

fn main() {
    check_orders();
    let valid = check_agreement();
    let work = Workloads::new(workload(&valid));
    let checksum = check_checksums(&work);
    assert_eq!(work.indices.len(), WORKLOAD);
    println!(
        "order.fsm: {} edges; workload checksum {checksum}, equal for all three",
        valid.len()
    );
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &work);
    criterion.final_summary();
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) the binary
    // is only being smoke-tested, so one round is enough.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    report_ratios(&work, if benchmarking { 31 } else { 1 });
}
