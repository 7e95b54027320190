//! The `fsm` binary, run as a real process on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tests::{machines, read, workspace_root};

/// Builds `fsm` once per test run (a no-op when it is fresh) and returns its path.
/// Another package's binary is not built for this one's tests, so ask cargo directly.
fn fsm_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "statemachine-dsl", "--bin", "fsm"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building fsm failed");
        // This test binary lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test binary has a path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>");
        profile_dir.join(format!("fsm{}", std::env::consts::EXE_SUFFIX))
    })
}

fn fsm(args: &[&str], dir: &Path) -> Output {
    Command::new(fsm_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("fsm runs")
}

/// Runs `fsm` from the workspace root with `args` followed by every shipped machine.
fn fsm_on_machines(args: &[&str]) -> Output {
    let paths: Vec<String> = machines().iter().map(|p| p.display().to_string()).collect();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(paths.iter().map(String::as_str));
    fsm(&all, &workspace_root())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch folder holding the given files.
fn scratch(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("writable scratch folder");
    }
    dir
}

const BROKEN: &str = "machine M {\n    state a initial\n    state b\n    actor user\n    on go: a -> c { by user }\n}\n";

#[test]
fn check_of_the_machines_is_clean() {
    let out = fsm_on_machines(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("0 errors, 0 warnings"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_errors_with_location_and_exits_1() {
    let dir = scratch(&[("m.fsm", BROKEN)]);
    let out = fsm(&["check", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("m.fsm:5:17: error[FSM003]: state `c` is not declared"),
        "{stderr}"
    );
    assert!(stderr.contains("^ unknown state"), "{stderr}");
}

#[test]
fn check_allows_warnings() {
    let source = "machine M {\n    state a initial\n    state b terminal\n    actor user\n    actor idle\n    on go: a -> b { by user }\n}\n";
    let dir = scratch(&[("m.fsm", source)]);
    let out = fsm(&["check", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("warning[FSM101]"));
    let strict = fsm(&["check", "--deny-warnings", "m.fsm"], dir.path());
    assert_eq!(
        strict.status.code(),
        Some(1),
        "--deny-warnings fails on a warning"
    );
}

#[test]
fn check_json_prints_one_object_per_line() {
    let dir = scratch(&[("m.fsm", BROKEN)]);
    let out = fsm(&["check", "--message-format", "json", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(value["file"], "m.fsm");
        assert!(value["code"].as_str().is_some_and(|c| c.starts_with("FSM")));
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(first["code"], "FSM003");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["primary"]["line"], 5);
    assert_eq!(first["primary"]["column"], 17);
}

#[test]
fn usage_and_io_errors_exit_2_with_one_line() {
    let dir = scratch(&[]);
    for args in [
        vec!["check", "missing.fsm"],
        vec!["frobnicate"],
        vec!["graph", "x.fsm", "--format", "svg"],
        vec!["check"],
    ] {
        let out = fsm(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("fsm: "), "{stderr}");
    }
}

#[test]
fn graph_prints_and_writes_the_committed_export() {
    let root = workspace_root();
    let out = fsm(&["graph", "machines/order.fsm", "--format", "dot"], &root);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), read(&root.join("machines/order.dot")));

    let dir = scratch(&[("order.fsm", &read(&root.join("machines/order.fsm")))]);
    let out = fsm(
        &[
            "graph",
            "order.fsm",
            "--format",
            "mermaid",
            "-o",
            "order.mmd",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        read(&dir.path().join("order.mmd")),
        read(&root.join("machines/order.mmd"))
    );
}

#[test]
fn graph_of_a_broken_file_exits_1_and_writes_nothing() {
    let dir = scratch(&[("m.fsm", BROKEN)]);
    let out = fsm(
        &["graph", "m.fsm", "--format", "dot", "-o", "m.dot"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[FSM003]"));
    assert!(!dir.path().join("m.dot").exists());
}

#[test]
fn fmt_rewrites_in_place_and_check_reports() {
    let messy =
        "machine M { state a initial\nstate b terminal actor user\non go: a -> b { by user } }\n";
    let dir = scratch(&[("m.fsm", messy)]);
    let out = fsm(&["fmt", "--check", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("would reformat m.fsm"));
    assert_eq!(
        read(&dir.path().join("m.fsm")),
        messy,
        "--check changes nothing"
    );

    let out = fsm(&["fmt", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let formatted = read(&dir.path().join("m.fsm"));
    assert_ne!(formatted, messy);
    assert_eq!(
        statemachine_dsl::format(&formatted).as_deref(),
        Ok(formatted.as_str())
    );

    let out = fsm(&["fmt", "--check", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_alone() {
    let broken = "machine M {\n    state a initial\n    on go a -> b { by user }\n}\n";
    let dir = scratch(&[("m.fsm", broken)]);
    let out = fsm(&["fmt", "m.fsm"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[FSM001]"));
    assert_eq!(read(&dir.path().join("m.fsm")), broken);
}

#[test]
fn fmt_check_passes_on_the_machines() {
    let out = fsm_on_machines(&["fmt", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn color_is_opt_in_off_a_terminal() {
    let dir = scratch(&[("m.fsm", BROKEN)]);
    let plain = fsm(&["check", "m.fsm"], dir.path());
    assert!(
        !text(&plain.stderr).contains('\x1b'),
        "no colour into a pipe"
    );
    let colored = fsm(&["--color", "always", "check", "m.fsm"], dir.path());
    assert_eq!(colored.status.code(), Some(1));
    assert!(text(&colored.stderr).contains("\x1b["), "colour on request");
    let never = fsm(&["check", "--color", "never", "m.fsm"], dir.path());
    assert_eq!(text(&never.stderr), text(&plain.stderr));
}

#[test]
fn explain_prints_the_reference_section_of_every_code() {
    let dir = scratch(&[]);
    for code in statemachine_dsl::Code::ALL {
        let out = fsm(&["explain", code.as_str()], dir.path());
        assert_eq!(out.status.code(), Some(0), "{code}");
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(&format!("### {code} ")), "{stdout}");
        assert!(
            stdout.contains("```fsm-broken"),
            "{code} has a broken example"
        );
        assert!(!stdout.contains("\n### "), "{code}: one section only");
    }
    let lower = fsm(&["explain", "fsm003"], dir.path());
    assert!(text(&lower.stdout).starts_with("### FSM003 "));
    let unknown = fsm(&["explain", "FSM999"], dir.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(text(&unknown.stderr).lines().count(), 1);
}

#[test]
fn check_points_at_explain() {
    let dir = scratch(&[("m.fsm", BROKEN)]);
    let out = fsm(&["check", "m.fsm"], dir.path());
    assert!(text(&out.stderr).ends_with("fsm: for more about a code, run `fsm explain FSM003`\n"));
}

/// Runs `fsm` with `input` on standard input.
fn fsm_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(fsm_binary())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fsm runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("fsm reads its input");
    child.wait_with_output().expect("fsm finishes")
}

#[test]
fn a_dash_reads_standard_input_for_editors() {
    let out = fsm_with_stdin(&["check", "--message-format", "json", "-"], BROKEN);
    assert_eq!(out.status.code(), Some(1));
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().expect("a diagnostic"))
            .expect("JSON");
    assert_eq!(first["file"], "<stdin>");

    let messy = "machine M { state a initial state b terminal actor u on go: a -> b { by u } }";
    let out = fsm_with_stdin(&["fmt", "-"], messy);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let formatted = text(&out.stdout);
    assert!(
        formatted.starts_with("machine M {\n    state a initial\n"),
        "{formatted}"
    );
    assert_eq!(
        statemachine_dsl::format(&formatted).as_deref(),
        Ok(formatted.as_str())
    );

    let out = fsm_with_stdin(&["fmt", "--check", "-"], messy);
    assert_eq!(out.status.code(), Some(1));
    let out = fsm_with_stdin(&["graph", "-", "--format", "dot"], &formatted);
    assert!(text(&out.stdout).starts_with("digraph M {"));
}
