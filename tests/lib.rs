//! Helpers shared by the integration tests: where the workspace's files are.

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
