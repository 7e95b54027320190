//! Helpers shared by the integration tests: where the workspace's files are.

pub mod postgres;

use std::path::{Path, PathBuf};

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The `.fsm` files directly inside `dir` (relative to the workspace root), sorted.
pub fn fsm_files(dir: &str) -> Vec<PathBuf> {
    let dir = workspace_root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "fsm"))
        .collect();
    files.sort();
    files
}

/// The machines of `machines/`.
pub fn machines() -> Vec<PathBuf> {
    fsm_files("machines")
}

/// The broken files of `tests/corpus/`.
pub fn corpus() -> Vec<PathBuf> {
    fsm_files("tests/corpus")
}

/// A file's name without its folder, e.g. `order.fsm`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file has a name")
        .to_string_lossy()
        .into_owned()
}

/// Reads a file that the test suite knows exists.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The proptest settings of the suite: `cases` cases, so that a module stays fast in a
/// debug build, unless `PROPTEST_CASES` asks for a deeper search by hand. Failures are
/// kept as plain regression tests, not as files.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let default = proptest::test_runner::Config::default();
    proptest::test_runner::Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        failure_persistence: None,
        ..default
    }
}
