//! `orderctl`: the operators' command line for the order service.
//!
//! Exit codes: 0 success; 1 refused or failed, with one line on stderr naming the
//! rule; 2 usage error (clap's own message, or one line for a value that names
//! nothing in the machine). A reader of stdout that stops early (`| head`) ends the
//! command quietly with 0: see [`output`].
//!
//! `ORDERCTL_NOW=2026-03-04T10:00:00Z` stops the engine's clock at that time for one
//! invocation (tests, rehearsals of the `business_hours` window); it is not in `--help`
//! on purpose: everything the command writes carries that time.
//!
//! `ORDERCTL_CRASH_AT=authorized|captured`, hidden likewise, aborts the process
//! (`std::process::abort`: no unwinding, no rollback sent) at that crash point of the
//! engine: after the processor authorized and before the answer is recorded, or after
//! it captured and before `pay` commits. It is for crash tests of real processes,
//! which then run `orderctl reconcile`.

mod args;
mod bench;
mod cli;
mod commands;
mod db;
mod output;
mod processor;
mod simulate;
mod table;

use std::process::ExitCode;

use clap::Parser as _;

/// What every command gets: the database URL, the processor's journal if one was
/// given, and whether to print JSON.
#[derive(Debug, Clone)]
pub struct Context {
    pub db: String,
    pub processor_journal: Option<std::path::PathBuf>,
    pub json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints its own message and exits 2 on a usage error (0 for --help).
    let cli = cli::Cli::parse();
    let ctx = Context {
        db: cli.db,
        processor_journal: cli.processor_journal,
        json: cli.json,
    };
    // The last flush is part of the command: a disk that fills up then is a failure.
    let result = commands::run(&ctx, cli.command).await.and_then(|code| {
        output::flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // The reader has all it wanted (`orderctl list | head -1`): not a failure.
        Err(error) if output::reader_left(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orderctl: {}", one_line(&error));
            if error.downcast_ref::<args::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line. Engine errors already print their cause
/// (`write failed: database error: ...`), so a cause whose text is already there is
/// not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_print_on_one_line_without_repeating_causes() {
        let outer = anyhow::anyhow!("disk\nfull").context("cannot open `x`");
        assert_eq!(super::one_line(&outer), "cannot open `x`: disk full");
    }
}
