//! `orderctl`: the operators' command line for the order service (init, simulate, fire,
//! list, history, bulk, stats, verify, bench, graph). Its commands follow the engine on
//! the roadmap in README.md; until then it says so and exits with a usage error.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "orderctl: no commands yet; the order engine is not built. \
         Use `fsm check|graph|fmt` for machine definitions."
    );
    ExitCode::from(2)
}
