//! Editing a `.fsm` file alone rebuilds the crate that compiles it, as a user's crate
//! would see it: a scratch crate outside the workspace, built by cargo.
//!
//! The scratch crate lives in a temporary folder and depends on `statemachine` by path,
//! with a copy of the workspace's `Cargo.lock` so that it resolves to the versions the
//! workspace already uses. Its target dir is `<target dir>/scratch-rebuild`, kept
//! between runs, so that only the first run compiles `statemachine` and its
//! dependencies (some 20 s on two cores); later runs compile the scratch crate alone.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use tests::workspace_root;

use crate::macro_errors::{cargo, target_dir};

const DOOR: &str = "\
machine Door {
    state shut initial
    state opened
    state removed terminal

    actor user

    on open: shut -> opened {
        by user
    }
    on close: opened -> shut {
        by user
    }
    on remove: shut -> removed {
        by user
    }
}
";

const MAIN: &str = "\
mod door {
    statemachine::machine!(\"door.fsm\");
}

fn main() {
    for state in door::State::ALL {
        println!(\"{state}\");
    }
}
";

/// One sequence, so that the dependencies are compiled once: build, build again without
/// changes, add a state, add an unused actor (a warning), break the file.
#[test]
fn editing_the_fsm_file_alone_rebuilds_the_crate() {
    let krate = scratch_crate();
    let fsm = krate.path().join("door.fsm");
    let target = target_dir().join("scratch-rebuild");
    let cargo_build = || build(krate.path(), &target);

    let first = cargo_build();
    assert!(first.succeeded, "the first build failed:\n{}", first.stderr);
    assert_eq!(
        first.fresh,
        Some(false),
        "the first build compiles the crate"
    );
    let exe = first.executable.expect("the build names the binary");
    assert_eq!(run(&exe), "shut\nopened\nremoved\n");

    let again = cargo_build();
    assert!(
        again.succeeded,
        "the second build failed:\n{}",
        again.stderr
    );
    assert_eq!(
        again.fresh,
        Some(true),
        "a build that changes nothing recompiled the crate:\n{}",
        again.stderr
    );

    let with_lock = DOOR
        .replace(
            "    state removed terminal\n",
            "    state removed terminal\n    state locked\n",
        )
        .replace(
            "    on remove:",
            "    on lock: shut -> locked {\n        by user\n    }\n    \
             on unlock: locked -> shut {\n        by user\n    }\n    on remove:",
        );
    write_newer(&fsm, &with_lock, &exe);
    let edited = cargo_build();
    assert!(
        edited.succeeded,
        "the edited file failed:\n{}",
        edited.stderr
    );
    assert_eq!(
        edited.fresh,
        Some(false),
        "editing only the .fsm file did not recompile the crate"
    );
    assert_eq!(run(&exe), "shut\nopened\nremoved\nlocked\n");

    // A warning of `fsm check` is a warning of `cargo build` too, on the path literal.
    let unused = with_lock.replace("    actor user\n", "    actor user\n    actor ghost\n");
    write_newer(&fsm, &unused, &exe);
    let warned = cargo_build();
    assert!(
        warned.succeeded,
        "a file with a warning failed:\n{}",
        warned.stderr
    );
    for expected in [
        "warning[FSM101]",
        "actor `ghost` is never named",
        "src/main.rs:2:",
    ] {
        assert!(
            warned.stderr.contains(expected),
            "the build does not warn {expected:?}:\n{}",
            warned.stderr
        );
    }

    write_newer(&fsm, &with_lock.replace("-> locked", "-> lockd"), &exe);
    let broken = cargo_build();
    assert!(!broken.succeeded, "a broken file built:\n{}", broken.stderr);
    for expected in [
        "door.fsm:",
        "error[FSM003]",
        "state `lockd` is not declared",
    ] {
        assert!(
            broken.stderr.contains(expected),
            "the failed build does not say {expected:?}:\n{}",
            broken.stderr
        );
    }
    assert!(
        !broken.stderr.contains("error[E"),
        "the .fsm error cascaded into Rust errors:\n{}",
        broken.stderr
    );
}

/// A crate holding `door.fsm`, `src/main.rs` and the workspace's `Cargo.lock`.
fn scratch_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let statemachine = workspace_root().join("statemachine");
    let manifest = format!(
        "[package]\nname = \"door\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nstatemachine = {{ path = '{}' }}\n\n\
         # Not a member of any workspace the temporary folder may sit in.\n[workspace]\n",
        statemachine.display()
    );
    write(&dir.path().join("Cargo.toml"), &manifest);
    write(&dir.path().join("door.fsm"), DOOR);
    std::fs::create_dir(dir.path().join("src")).expect("a writable temporary folder");
    write(&dir.path().join("src").join("main.rs"), MAIN);
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .expect("the workspace has a Cargo.lock");
    dir
}

struct Build {
    succeeded: bool,
    /// Cargo's progress and the compiler's rendered diagnostics.
    stderr: String,
    /// The binary, when it was built.
    executable: Option<PathBuf>,
    /// Whether cargo reused the crate's last build, when it was built.
    fresh: Option<bool>,
}

fn build(krate: &Path, target: &Path) -> Build {
    let output: Output = cargo()
        .args(["build", "--message-format=json-render-diagnostics"])
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let artifact = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "door"
        });
    Build {
        succeeded: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        executable: artifact
            .as_ref()
            .and_then(|a| a["executable"].as_str())
            .map(PathBuf::from),
        fresh: artifact.as_ref().and_then(|a| a["fresh"].as_bool()),
    }
}

/// The binary's standard output.
fn run(exe: &Path) -> String {
    let output = std::process::Command::new(exe)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{} failed", exe.display());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Writes `path` so that its modification time is later than `than`'s, as cargo needs
/// to see the change; on a file system with coarse timestamps that takes a pause.
fn write_newer(path: &Path, text: &str, than: &Path) {
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    for _ in 0..3 {
        write(path, text);
        if modified(path) > modified(than) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    panic!("{} stays older than {}", path.display(), than.display());
}
