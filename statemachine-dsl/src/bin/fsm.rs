//! `fsm`: check, graph and format `.fsm` files.
//!
//! Exit codes: 0 when every file is clean (warnings allowed), 1 when a file has an
//! error (or `fmt --check` would change one), 2 on a usage or IO error.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use statemachine_dsl::{Code, Diagnostic, SourceFile, check, format, to_dot, to_mermaid};

#[derive(Parser, Debug)]
#[command(
    name = "fsm",
    version,
    about = "Check, graph and format .fsm state machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour diagnostics: `auto` colours them when standard error is a terminal and
    /// `NO_COLOR` is unset.
    #[arg(long, value_enum, global = true, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report every problem of each file; exit 1 if any file has an error.
    Check {
        /// The files to check; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `human` for people, `json` for one JSON diagnostic per line on stdout.
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        message_format: MessageFormat,
        /// Exit 1 on warnings too, for CI that keeps machines warning-free.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Export the state graph of a file.
    Graph {
        /// The machine; `-` reads standard input.
        file: PathBuf,
        /// The graph language.
        #[arg(long, value_enum)]
        format: GraphFormat,
        /// Where to write the graph; standard output when absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Explain a diagnostic code, with a broken example and its fix.
    Explain {
        /// A code such as `FSM007`.
        code: String,
    },
    /// Rewrite files in the canonical layout.
    Fmt {
        /// The files to rewrite; `-` formats standard input to standard output.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not in the canonical layout.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MessageFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// What a command found, as opposed to a usage or IO error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Clean,
    Problems,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // `--help` and `--version` are not errors.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let reason = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("fsm: {reason} (see `fsm --help`)");
            return ExitCode::from(2);
        }
    };
    let printer = Printer {
        color: cli.color.enabled(),
    };
    let result = match cli.command {
        Command::Check {
            files,
            message_format,
            deny_warnings,
        } => run_check(printer, &files, message_format, deny_warnings),
        Command::Graph {
            file,
            format,
            output,
        } => run_graph(printer, &file, format, output.as_deref()),
        Command::Fmt { files, check } => run_fmt(printer, &files, check),
        Command::Explain { code } => run_explain(&code),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        // A reader that stops early (`fsm graph ... | head`) is not a failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fsm: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// `-` stands for standard input, so that editors can check or format an unsaved buffer.
fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn read(path: &Path) -> Result<String> {
    if is_stdin(path) {
        return io::read_to_string(io::stdin()).context("cannot read standard input");
    }
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        return "<stdin>".to_owned();
    }
    path.display().to_string()
}

fn run_check(
    printer: Printer,
    files: &[PathBuf],
    message_format: MessageFormat,
    deny_warnings: bool,
) -> Result<Outcome> {
    // Read every file first, so that a missing file is a usage error reported before
    // any output rather than halfway through it.
    let sources = files
        .iter()
        .map(|path| Ok((display_name(path), read(path)?)))
        .collect::<Result<Vec<_>>>()?;
    let (mut errors, mut warnings) = (0, 0);
    let mut first_code = None;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for (name, source) in &sources {
        let file = SourceFile::new(name, source);
        let diagnostics = check(source).diagnostics;
        errors += diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += diagnostics.iter().filter(|d| !d.is_error()).count();
        first_code = first_code.or(diagnostics.first().map(|d| d.code));
        match message_format {
            MessageFormat::Human => printer.diagnostics(&file, &diagnostics),
            MessageFormat::Json => {
                for d in &diagnostics {
                    serde_json::to_writer(&mut out, &file.to_json(d))?;
                    writeln!(out)?;
                }
            }
        }
    }
    if matches!(message_format, MessageFormat::Human) {
        eprintln!(
            "fsm: checked {} {}: {}, {}",
            sources.len(),
            plural(sources.len(), "file"),
            count(errors, "error"),
            count(warnings, "warning")
        );
        if let Some(code) = first_code {
            eprintln!("fsm: for more about a code, run `fsm explain {code}`");
        }
    }
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

/// How diagnostics are shown to people.
#[derive(Clone, Copy, Debug)]
struct Printer {
    color: bool,
}

impl Printer {
    /// Prints the rendered diagnostics to standard error, each followed by a blank line.
    fn diagnostics(self, file: &SourceFile<'_>, diagnostics: &[Diagnostic]) {
        for d in diagnostics {
            let text = if self.color {
                file.render_colored(d)
            } else {
                file.render(d)
            };
            eprintln!("{text}");
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

fn count(n: usize, word: &str) -> String {
    format!("{n} {}", plural(n, word))
}

fn run_graph(
    printer: Printer,
    path: &Path,
    format: GraphFormat,
    output: Option<&Path>,
) -> Result<Outcome> {
    let source = read(path)?;
    let name = display_name(path);
    let checked = check(&source);
    let file = SourceFile::new(&name, &source);
    printer.diagnostics(&file, &checked.diagnostics);
    let Some(model) = checked.model else {
        eprintln!("fsm: {name} has errors; no graph was written");
        return Ok(Outcome::Problems);
    };
    let graph = match format {
        GraphFormat::Dot => to_dot(&model),
        GraphFormat::Mermaid => to_mermaid(&model),
    };
    match output {
        Some(out) => write_atomically(out, &graph)?,
        None => io::stdout().lock().write_all(graph.as_bytes())?,
    }
    Ok(Outcome::Clean)
}

/// The language reference, whose section per code `fsm explain` prints.
const LANGUAGE_REFERENCE: &str = include_str!("../../../docs/language.md");

fn run_explain(code: &str) -> Result<Outcome> {
    let known = Code::ALL
        .iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(code))
        .with_context(|| format!("unknown code `{code}`; codes look like FSM007"))?;
    let section = explanation(LANGUAGE_REFERENCE, known.as_str())
        .with_context(|| format!("the language reference has no section for {known}"))?;
    print!("{section}");
    Ok(Outcome::Clean)
}

/// The section of the reference headed `### CODE ...`, up to the next heading.
fn explanation<'a>(reference: &'a str, code: &str) -> Option<&'a str> {
    let heading = format!("### {code} ");
    let start = reference.find(&heading)?;
    let rest = &reference[start..];
    let end = rest[heading.len()..]
        .find("\n#")
        .map_or(rest.len(), |i| heading.len() + i + 1);
    Some(&rest[..end])
}

fn run_fmt(printer: Printer, files: &[PathBuf], check_only: bool) -> Result<Outcome> {
    let mut outcome = Outcome::Clean;
    for path in files {
        let source = read(path)?;
        let name = display_name(path);
        match format(&source) {
            Err(diagnostics) => {
                let file = SourceFile::new(&name, &source);
                printer.diagnostics(&file, &diagnostics);
                eprintln!("fsm: {name} has syntax errors; it was left unchanged");
                outcome = Outcome::Problems;
            }
            // Standard input has nowhere to be rewritten: the result goes to stdout.
            Ok(formatted) if is_stdin(path) && !check_only => print!("{formatted}"),
            Ok(formatted) if formatted == source => {}
            Ok(_) if check_only => {
                println!("would reformat {name}");
                outcome = Outcome::Problems;
            }
            Ok(formatted) => {
                write_atomically(path, &formatted)?;
                println!("formatted {name}");
            }
        }
    }
    Ok(outcome)
}

/// Writes through a temporary file in the same folder and renames it into place, so
/// that an interrupted write never leaves a half-written machine behind.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temp = dir.join(format!(".{}.fsm-tmp", file_name.to_string_lossy()));
    fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    // Keep the permissions of the file being replaced.
    if let Ok(metadata) = fs::metadata(path) {
        fs::set_permissions(&temp, metadata.permissions())?;
    }
    fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
}
