//! The `orderctl` binary, run as a real process on temporary SQLite databases (and
//! PostgreSQL ones where it says so): every command, the exit codes (0 success, 1
//! refused, 2 usage), the JSON shapes and the one-line messages; processes killed at a
//! crash point, then reconciled.

mod errors;
mod flow;
mod operations;
mod output;
mod payments;
mod processes;
mod processor;
mod shipments;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tests::workspace_root;

/// Builds `orderctl` once per test run (a no-op when it is fresh) and returns its
/// path. Another package's binary is not built for this one's tests, so ask cargo.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "orderctl", "--bin", "orderctl"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building orderctl failed");
        // This test binary lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test binary has a path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>");
        profile_dir.join(format!("orderctl{}", std::env::consts::EXE_SUFFIX))
    })
}

/// Runs `orderctl args` in `dir`, with no database, processor journal, clock or crash
/// point chosen by the environment.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_at(dir, None, args)
}

/// Runs `orderctl args` in `dir`, its clock stopped at `now` (RFC 3339) when given.
fn run_at(dir: &Path, now: Option<&str>, args: &[&str]) -> Output {
    command_at(dir, now, args).output().expect("orderctl runs")
}

/// The command `orderctl args` in `dir`, its clock stopped at `now` when given.
fn command_at(dir: &Path, now: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("ORDERCTL_DB")
        .env_remove("ORDERCTL_PROCESSOR_JOURNAL")
        .env_remove("ORDERCTL_NOW")
        .env_remove("ORDERCTL_CRASH_AT");
    if let Some(now) = now {
        command.env("ORDERCTL_NOW", now);
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A shop on a database file of its own in a temporary folder.
struct Shop {
    dir: tempfile::TempDir,
    url: String,
    /// `ORDERCTL_NOW` for every command, if set.
    now: Option<String>,
}

impl Shop {
    /// An empty database (not even created yet).
    fn empty() -> Shop {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("orders.db").display());
        Shop {
            dir,
            url,
            now: None,
        }
    }

    /// An empty PostgreSQL database of its own, on the tests' throwaway cluster.
    fn postgres() -> Shop {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = tests::postgres::database_blocking();
        Shop {
            dir,
            url,
            now: None,
        }
    }

    /// From now on, every command runs with its clock stopped at `now` (RFC 3339).
    fn at(mut self, now: &str) -> Shop {
        self.now = Some(now.to_owned());
        self
    }

    /// Migrated, with products MUG (15.00, 10 in stock) and TEE (20.00, 1 in stock),
    /// `sam` in support and `ada` an admin.
    fn stocked() -> Shop {
        Shop::empty().stock()
    }

    /// The same catalog and staff as `stocked`, in this shop's database.
    fn stock(self) -> Shop {
        let shop = self;
        shop.ok(&["init"]);
        shop.ok(&[
            "product", "add", "MUG", "--name", "Mug", "--price", "1500", "--stock", "10",
        ]);
        shop.ok(&[
            "product", "add", "TEE", "--name", "T-shirt", "--price", "2000", "--stock", "1",
        ]);
        shop.ok(&["staff", "add", "sam", "--role", "support"]);
        shop.ok(&["staff", "add", "ada", "--role", "admin"]);
        shop
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("orders.db")
    }

    /// The processor's journal when none is given: beside the SQLite file, or in the
    /// folder the commands run in (PostgreSQL).
    fn journal(&self) -> PathBuf {
        let name = if self.url.starts_with("sqlite:") {
            "orders.db.processor.jsonl"
        } else {
            "orderctl-processor.jsonl"
        };
        self.dir.path().join(name)
    }

    /// The command `orderctl --db URL args`, for a test to add an environment or pipes.
    fn command(&self, args: &[&str]) -> Command {
        let mut all = vec!["--db", self.url.as_str()];
        all.extend_from_slice(args);
        command_at(self.dir.path(), self.now.as_deref(), &all)
    }

    /// `orderctl --db URL args`.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("orderctl runs")
    }

    /// `orderctl --db URL args` with `input` on its stdin.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("orderctl starts");
        child
            .stdin
            .take()
            .expect("a stdin")
            .write_all(input.as_bytes())
            .expect("stdin takes the input");
        child.wait_with_output().expect("orderctl runs")
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "orderctl {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs a command with `--json` that must succeed; its parsed stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// Runs a command that must exit with `code` and one line on stderr; that line.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        one_line_error(&self.run(args), code, args)
    }

    /// Creates an order of `items` for `email`; its id.
    fn order(&self, email: &str, items: &[&str]) -> i64 {
        let mut args = vec!["order", "create", "--customer", email];
        for item in items {
            args.extend(["--item", item]);
        }
        self.json(&args)["id"].as_i64().expect("an order id")
    }
}

/// Asserts the exit code and that stderr is exactly one line `orderctl: ...`; returns it.
fn one_line_error(out: &Output, code: i32, args: &[&str]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "orderctl {args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "orderctl {args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with("orderctl: "),
        "orderctl {args:?}: {stderr}"
    );
    stderr.trim_end().to_owned()
}
