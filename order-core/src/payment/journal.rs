//! A simulated processor whose books outlive the process that called it and are shared
//! by every process that opens the same journal, as a real processor's are: each call
//! is appended to a journal file (and flushed to disk) before its answer is returned.
//! A process killed after a call therefore leaves the effect in the processor's books,
//! which is what crash tests and reconciliation need to see.
//!
//! Every call takes an exclusive lock on the file, first replays the calls other
//! processes appended since it last looked, then makes its own and appends it. The
//! simulator is deterministic for its configuration and the order of calls (the
//! journal keeps failed calls too), so every process holds the same books.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};

use super::{
    Authorization, Balance, PaymentError, PaymentProcessor, ProcessorEvent, Simulator,
    SimulatorConfig,
};

/// One call as the journal keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    call: String,
    key: String,
    reference: String,
    amount_cents: i64,
}

impl Entry {
    fn new(call: &str, key: &str, reference: &str, amount_cents: i64) -> Entry {
        Entry {
            call: call.to_owned(),
            key: key.to_owned(),
            reference: reference.to_owned(),
            amount_cents,
        }
    }
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("cannot use the processor journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a processor journal entry: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The open journal and how far this process has replayed it.
#[derive(Debug)]
struct Journal {
    file: File,
    read_to: u64,
    lines: usize,
}

/// The journal, locked for one call: the file lock is released when it is dropped.
struct Entered<'a>(MutexGuard<'a, Journal>);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.0.file.unlock() {
            tracing::warn!(%err, "could not unlock the processor journal");
        }
    }
}

/// A [`Simulator`] that journals its calls to a file shared with other processes.
#[derive(Debug)]
pub struct JournaledSimulator {
    simulator: Simulator,
    path: PathBuf,
    journal: Mutex<Journal>,
}

impl JournaledSimulator {
    /// Opens (or creates) the journal at `path` and replays it.
    pub async fn open(
        path: &Path,
        config: SimulatorConfig,
    ) -> Result<JournaledSimulator, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                path: path.to_owned(),
                source,
            })?;
        let processor = JournaledSimulator {
            simulator: Simulator::new(config),
            path: path.to_owned(),
            journal: Mutex::new(Journal {
                file,
                read_to: 0,
                lines: 0,
            }),
        };
        drop(processor.enter().await?);
        Ok(processor)
    }

    /// The simulator holding the replayed books.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// An authorization lapses at the processor (see [`Simulator::expire_authorization`]).
    pub async fn expire_authorization(
        &self,
        reference: &str,
    ) -> Result<ProcessorEvent, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let event = self.simulator.expire_authorization(reference);
        self.leave(journal, Entry::new("expire", "", reference, 0))?;
        event
    }

    /// The bank takes captured money back (see [`Simulator::chargeback`]).
    pub async fn chargeback(
        &self,
        reference: &str,
        amount_cents: i64,
    ) -> Result<ProcessorEvent, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let event = self.simulator.chargeback(reference, amount_cents);
        self.leave(
            journal,
            Entry::new("chargeback", "", reference, amount_cents),
        )?;
        event
    }

    /// A refund is not paid out (see [`Simulator::reverse_refund`]).
    pub async fn reverse_refund(
        &self,
        refund_reference: &str,
    ) -> Result<ProcessorEvent, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let event = self.simulator.reverse_refund(refund_reference);
        self.leave(
            journal,
            Entry::new("reverse_refund", "", refund_reference, 0),
        )?;
        event
    }

    /// Locks the journal file and replays what other processes appended meanwhile.
    async fn enter(&self) -> Result<Entered<'_>, JournalError> {
        let journal = self.journal.lock().await;
        journal.file.lock().map_err(|source| self.io(source))?;
        let mut entered = Entered(journal);
        self.catch_up(&mut entered.0).await?;
        Ok(entered)
    }

    async fn catch_up(&self, journal: &mut Journal) -> Result<(), JournalError> {
        let mut text = String::new();
        journal
            .file
            .seek(SeekFrom::Start(journal.read_to))
            .and_then(|_| journal.file.read_to_string(&mut text))
            .map_err(|source| self.io(source))?;
        for line in text.lines() {
            journal.lines += 1;
            let corrupt = |message: String| JournalError::Corrupt {
                path: self.path.clone(),
                line: journal.lines,
                message,
            };
            let entry: Entry = serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
            replay(&self.simulator, &entry).await.map_err(corrupt)?;
        }
        journal.read_to += text.len() as u64;
        Ok(())
    }

    /// Appends this process's call, flushed to disk (after this, the call happened),
    /// and unlocks the file.
    fn leave(&self, mut entered: Entered<'_>, entry: Entry) -> Result<(), PaymentError> {
        let journal = &mut entered.0;
        let appended = serde_json::to_string(&entry)
            .map_err(|err| PaymentError::Unavailable(format!("journal: {err}")))
            .and_then(|line| {
                let line = format!("{line}\n");
                journal
                    .file
                    .write_all(line.as_bytes())
                    .and_then(|()| journal.file.sync_data())
                    .map_err(|err| PaymentError::Unavailable(format!("journal: {err}")))
                    .map(|()| line.len() as u64)
            });
        if let Ok(written) = appended {
            journal.read_to += written;
            journal.lines += 1;
        }
        appended.map(drop)
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn unavailable(err: JournalError) -> PaymentError {
    PaymentError::Unavailable(err.to_string())
}

/// Makes `entry`'s call again; its answer was given when it was journaled.
async fn replay(simulator: &Simulator, entry: &Entry) -> Result<(), String> {
    let (key, reference, amount) = (&entry.key, &entry.reference, entry.amount_cents);
    match entry.call.as_str() {
        "authorize" => drop(simulator.authorize(key, amount).await),
        "capture" => drop(simulator.capture(key, reference, amount).await),
        "void" => drop(simulator.void(key, reference).await),
        "refund" => drop(simulator.refund(key, reference, amount).await),
        "expire" => drop(simulator.expire_authorization(reference)),
        "chargeback" => drop(simulator.chargeback(reference, amount)),
        "reverse_refund" => drop(simulator.reverse_refund(reference)),
        other => return Err(format!("unknown call `{other}`")),
    }
    Ok(())
}

#[async_trait]
impl PaymentProcessor for JournaledSimulator {
    async fn authorize(&self, key: &str, amount_cents: i64) -> Result<Authorization, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let answer = self.simulator.authorize(key, amount_cents).await;
        self.leave(journal, Entry::new("authorize", key, "", amount_cents))?;
        answer
    }

    async fn capture(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<(), PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let answer = self.simulator.capture(key, reference, amount_cents).await;
        self.leave(journal, Entry::new("capture", key, reference, amount_cents))?;
        answer
    }

    async fn void(&self, key: &str, reference: &str) -> Result<(), PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let answer = self.simulator.void(key, reference).await;
        self.leave(journal, Entry::new("void", key, reference, 0))?;
        answer
    }

    async fn refund(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<String, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let answer = self.simulator.refund(key, reference, amount_cents).await;
        self.leave(journal, Entry::new("refund", key, reference, amount_cents))?;
        answer
    }

    /// The books as every process's calls left them.
    async fn balance(&self, reference: &str) -> Result<Balance, PaymentError> {
        let journal = self.enter().await.map_err(unavailable)?;
        let balance = self.simulator.balance(reference).await;
        drop(journal);
        balance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_openers_of_one_journal_share_the_books() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("processor.jsonl");
        let config = SimulatorConfig::default();
        let one = JournaledSimulator::open(&path, config.clone())
            .await
            .expect("opens");
        let two = JournaledSimulator::open(&path, config)
            .await
            .expect("opens");
        // Each sees what the other did since it last looked: references do not clash
        // and a capture finds an authorization made by the other.
        let first = one.authorize("a-1", 300).await.expect("authorized");
        let second = two.authorize("a-2", 400).await.expect("authorized");
        assert_ne!(first.reference, second.reference);
        two.capture("c-1", &first.reference, 300)
            .await
            .expect("captured");
        let seen = one.balance(&first.reference).await.expect("known");
        assert_eq!(seen.captured_cents, 300);
        let replayed = one.authorize("a-2", 400).await.expect("replayed");
        assert_eq!(replayed.reference, second.reference);
    }

    #[tokio::test]
    async fn a_reopened_journal_has_the_same_books_and_replays_keys() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("processor.jsonl");
        let config = SimulatorConfig::default();
        let first = JournaledSimulator::open(&path, config.clone())
            .await
            .expect("opens");
        let auth = first.authorize("a-1", 500).await.expect("authorized");
        first
            .capture("c-1", &auth.reference, 500)
            .await
            .expect("captured");
        let refused = first.capture("c-2", "pay_unknown", 5).await;
        assert!(refused.is_err());
        let refund = first
            .refund("r-1", &auth.reference, 200)
            .await
            .expect("refunded");
        first
            .chargeback(&auth.reference, 50)
            .await
            .expect("charged back");
        first.reverse_refund(&refund).await.expect("reversed");
        drop(first);

        let second = JournaledSimulator::open(&path, config)
            .await
            .expect("reopens");
        let balance = second.balance(&auth.reference).await.expect("known");
        // 200 refunded, 50 charged back, the 200 reversed.
        assert_eq!((balance.captured_cents, balance.refunded_cents), (500, 50));
        // The same key gets the same answer: no second authorization.
        let again = second.authorize("a-1", 500).await.expect("replayed");
        assert_eq!(again.reference, auth.reference);
        let next = second.authorize("a-2", 700).await.expect("a new one");
        assert_ne!(next.reference, auth.reference);
        assert_eq!(second.simulator().total_captured(), 500);
    }

    #[tokio::test]
    async fn a_broken_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("processor.jsonl");
        std::fs::write(&path, "{\"call\":\"authorize\",\"key\":\"k\",\"reference\":\"\",\"amount_cents\":5}\nnot json\n")
            .expect("written");
        let err = JournaledSimulator::open(&path, SimulatorConfig::default())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("processor.jsonl:2:"), "{err}");
    }
}
