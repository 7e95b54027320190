//! `machine!` misused and `.fsm` files broken, compiled as a user's crate would be: every
//! case in `tests/ui/*.rs` must fail to compile with exactly the `.stderr` beside it.
//! After changing the macro's messages, regenerate them with
//! `TRYBUILD=overwrite cargo test -p tests --test integration macro_errors` and read
//! every changed `.stderr`: each must show the located diagnostic and nothing else.
//!
//! Where the cases find their `.fsm` files: trybuild compiles each case as a binary of a
//! package it generates in `<target dir>/tests/trybuild/tests/` (the last `tests` being
//! this crate's name), and that folder is the `CARGO_MANIFEST_DIR` the macro resolves
//! paths against (checked by hand: it is `$WORKSPACE/target/tests/trybuild/tests` with
//! the default target dir, and the package is `tests-tests`). Trybuild sets no variable
//! that names this crate's folder, and the case files are compiled where they are, so a
//! path back into `tests/ui/` would have to climb out of the target dir
//! (`../../../../tests/ui/fsm/...`), which only holds when the target dir is the default
//! `target/` of the workspace. Instead, the test copies `tests/ui/fsm/` into the
//! generated package's folder before trybuild runs, and the cases name
//! `machine!("fsm/...")`: that holds wherever `CARGO_TARGET_DIR` points, and the
//! diagnostics read `fsm/order.fsm:10:25: ...` rather than a long relative path.
//! The target dir is the one trybuild itself uses: `cargo metadata`'s `target_directory`.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn misuses_and_broken_files_fail_with_located_errors() {
    copy_fsm_files(&trybuild_package_dir().join("fsm"));
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}

/// The folder of the package trybuild generates: the cases' `CARGO_MANIFEST_DIR`.
fn trybuild_package_dir() -> PathBuf {
    target_dir()
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"))
}

/// The cargo of this test run, as trybuild and cargo's own docs recommend.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The workspace's target dir, honouring `CARGO_TARGET_DIR` and cargo's configuration.
pub(crate) fn target_dir() -> PathBuf {
    let output = cargo()
        .args(["metadata", "--no-deps", "--format-version=1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let dir = metadata["target_directory"]
        .as_str()
        .expect("cargo metadata names the target directory");
    PathBuf::from(dir)
}

/// Copies every file of `tests/ui/fsm/` into `dest`, replacing what a previous run left.
fn copy_fsm_files(dest: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui").join("fsm");
    std::fs::create_dir_all(dest)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dest.display()));
    let entries = std::fs::read_dir(&source)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        let name = path.file_name().expect("a file has a name");
        std::fs::copy(&path, dest.join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
    }
}
