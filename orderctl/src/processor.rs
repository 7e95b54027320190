//! The payment processor `orderctl` gives the engine: a simulator whose books live in a
//! journal file, [`JournaledSimulator`], with the default configuration (it never
//! declines, fails or times out).
//!
//! Every `orderctl` invocation is a process of its own, so a processor whose books lived
//! in memory would forget the authorization an earlier `order authorize` made before
//! `fire ORDER pay` captures it, and could not say what it holds when `reconcile` asks
//! after a crash. The journal keeps every call, and every process that opens the same
//! journal replays it under a file lock, so they share one set of books: a repeated
//! idempotency key gets the same answer, references never clash, and a process killed
//! after the processor answered leaves the effect in the books for `reconcile` to find.
//!
//! Where the journal is ([`JournalPath`]): `--processor-journal PATH` (or
//! `ORDERCTL_PROCESSOR_JOURNAL`); else `FILE.processor.jsonl` beside a `sqlite://FILE`
//! database, a temporary file for an in-memory database (which no other process can
//! open either), and [`POSTGRES_JOURNAL`] in the current folder for PostgreSQL.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use order_core::payment::{JournalError, JournaledSimulator, SimulatorConfig};

use crate::args::UsageError;

/// The journal of a PostgreSQL database's processor, in the current folder.
pub const POSTGRES_JOURNAL: &str = "orderctl-processor.jsonl";
/// What a SQLite database file's name gets for its journal beside it.
pub const SQLITE_SUFFIX: &str = ".processor.jsonl";

/// Where the processor's journal is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalPath {
    /// The file `--processor-journal` names: a path that cannot be used is a usage
    /// error.
    Given(PathBuf),
    /// The default file for the database.
    Default(PathBuf),
    /// A new temporary file, removed as soon as it is open.
    Temporary,
}

impl JournalPath {
    /// The journal `given` names, or the default for the database `db`.
    pub fn new(given: Option<&Path>, db: &str) -> Result<JournalPath, UsageError> {
        match given {
            Some(path) => check_given(path).map(|()| JournalPath::Given(path.to_owned())),
            None => Ok(JournalPath::default_for(db)),
        }
    }

    /// `FILE.processor.jsonl` for `sqlite://FILE`, a temporary file for an in-memory
    /// SQLite database, [`POSTGRES_JOURNAL`] for anything else (PostgreSQL; other URLs
    /// are refused when the database is opened).
    fn default_for(db: &str) -> JournalPath {
        let Some(rest) = db.strip_prefix("sqlite:") else {
            return JournalPath::Default(PathBuf::from(POSTGRES_JOURNAL));
        };
        // As sqlx reads the URL: `sqlite://FILE?PARAMS` or `sqlite:FILE?PARAMS`.
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (file, params) = rest.split_once('?').unwrap_or((rest, ""));
        let in_memory = file == ":memory:" || params.split('&').any(|p| p == "mode=memory");
        if in_memory || file.is_empty() {
            return JournalPath::Temporary;
        }
        let mut name = OsString::from(file);
        name.push(SQLITE_SUFFIX);
        JournalPath::Default(PathBuf::from(name))
    }

    /// Opens (or creates) the journal and replays it. A given path that cannot be
    /// opened is a [`UsageError`]; a corrupt journal, or a default one that cannot be
    /// opened, is a plain error.
    pub async fn open(&self) -> anyhow::Result<Arc<JournaledSimulator>> {
        let config = SimulatorConfig::default();
        let opened = match self {
            JournalPath::Given(path) => match JournaledSimulator::open(path, config).await {
                Err(err @ JournalError::Io { .. }) => {
                    return Err(UsageError(format!("--processor-journal: {err}")).into());
                }
                other => other,
            },
            JournalPath::Default(path) => JournaledSimulator::open(path, config).await,
            JournalPath::Temporary => {
                let file = tempfile::Builder::new()
                    .prefix("orderctl-processor-")
                    .suffix(".jsonl")
                    .tempfile()
                    .context("cannot create a temporary processor journal")?;
                // The simulator keeps a handle of its own: the file's name is removed
                // when `file` is dropped, its content lives as long as the process.
                JournaledSimulator::open(file.path(), config).await
            }
        };
        Ok(Arc::new(opened?))
    }
}

/// Refuses what cannot be a journal file before anything is opened or created.
fn check_given(path: &Path) -> Result<(), UsageError> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(UsageError(
            "--processor-journal: the path is empty".to_owned(),
        ));
    }
    if path.is_dir() {
        return Err(UsageError(format!(
            "--processor-journal: `{shown}` is a folder, not a file"
        )));
    }
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            Err(UsageError(format!(
                "--processor-journal: `{shown}`: there is no folder `{}`",
                folder.display()
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use order_core::payment::PaymentProcessor as _;

    use super::{JournalPath, POSTGRES_JOURNAL};
    use crate::args::UsageError;

    fn default_for(db: &str) -> JournalPath {
        JournalPath::new(None, db).expect("a default")
    }

    #[test]
    fn the_default_journal_follows_the_database() {
        let beside = |path: &str| JournalPath::Default(PathBuf::from(path));
        assert_eq!(
            default_for("sqlite://orders.db"),
            beside("orders.db.processor.jsonl")
        );
        assert_eq!(
            default_for("sqlite:///var/shop/orders.db?mode=rwc"),
            beside("/var/shop/orders.db.processor.jsonl")
        );
        assert_eq!(
            default_for("sqlite:orders.db"),
            beside("orders.db.processor.jsonl")
        );
        for memory in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://shop?mode=memory&cache=shared",
        ] {
            assert_eq!(default_for(memory), JournalPath::Temporary, "{memory}");
        }
        assert_eq!(
            default_for("postgres://shop@db/orders"),
            beside(POSTGRES_JOURNAL)
        );
    }

    #[test]
    fn a_given_journal_must_be_a_file_in_a_folder_that_exists() {
        let dir = tempfile::tempdir().expect("a folder");
        let given = |path: &Path| JournalPath::new(Some(path), "sqlite://orders.db");
        let file = dir.path().join("books.jsonl");
        assert_eq!(given(&file), Ok(JournalPath::Given(file.clone())));
        assert_eq!(
            given(Path::new("books.jsonl")),
            Ok(JournalPath::Given(PathBuf::from("books.jsonl")))
        );
        let refused = |path: &Path| given(path).expect_err("refused").0;
        assert_eq!(
            refused(Path::new("")),
            "--processor-journal: the path is empty"
        );
        assert!(refused(dir.path()).ends_with("is a folder, not a file"));
        let nowhere = dir.path().join("missing").join("books.jsonl");
        assert!(
            refused(&nowhere).contains("there is no folder"),
            "{}",
            refused(&nowhere)
        );
    }

    #[tokio::test]
    async fn processes_share_the_books_of_one_journal() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = JournalPath::Default(dir.path().join("orders.db.processor.jsonl"));
        let first = path.open().await.expect("opens");
        let auth = first.authorize("order-1-authorize-1", 500).await;
        let reference = auth.expect("authorized").reference;
        // Another invocation opens the same journal: it knows the authorization,
        // replays its key and hands out a new reference for a new one.
        let second = path.open().await.expect("reopens");
        assert_eq!(second.capture("c-1", &reference, 500).await, Ok(()));
        let again = second.authorize("order-1-authorize-1", 500).await;
        assert_eq!(again.map(|a| a.reference), Ok(reference.clone()));
        let other = second.authorize("order-2-authorize-1", 700).await;
        assert_ne!(other.map(|a| a.reference), Ok(reference.clone()));
        let balance = first.balance(&reference).await.expect("known");
        assert_eq!(balance.captured_cents, 500);
    }

    #[tokio::test]
    async fn a_temporary_journal_works_and_a_bad_one_is_refused() {
        let temporary = JournalPath::Temporary.open().await.expect("opens");
        let auth = temporary.authorize("k", 500).await.expect("authorized");
        assert_eq!(temporary.capture("c", &auth.reference, 500).await, Ok(()));

        let dir = tempfile::tempdir().expect("a folder");
        let corrupt = dir.path().join("books.jsonl");
        std::fs::write(&corrupt, "not json\n").expect("written");
        for path in [
            JournalPath::Given(corrupt.clone()),
            JournalPath::Default(corrupt),
        ] {
            let err = path.open().await.expect_err("refused");
            assert!(err.downcast_ref::<UsageError>().is_none(), "{err}");
            assert!(err.to_string().contains("books.jsonl:1:"), "{err}");
        }
        // A file the process may not open: an argument to fix when it was given.
        let unusable = dir.path().join("folder.jsonl");
        std::fs::create_dir(&unusable).expect("created");
        let err = JournalPath::Given(unusable.clone())
            .open()
            .await
            .expect_err("refused");
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
        let err = JournalPath::Default(unusable)
            .open()
            .await
            .expect_err("refused");
        assert!(err.downcast_ref::<UsageError>().is_none(), "{err}");
    }
}
