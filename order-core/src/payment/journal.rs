//! A simulated processor whose books outlive the process that called it, as a real
//! processor's do: every call is appended to a journal file (and flushed to disk)
//! before its answer is returned, and opening the journal replays the calls into a
//! fresh [`Simulator`]. A process killed after a call therefore leaves the effect in the
//! processor's books, which is what crash tests and reconciliation need to see.
//!
//! Replaying reproduces the books because the simulator is deterministic for its
//! configuration and the order of calls: the journal keeps failed calls too.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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

/// Why a journal could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("cannot open the processor journal {path}: {source}")]
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

/// A [`Simulator`] that journals its calls to a file.
#[derive(Debug)]
pub struct JournaledSimulator {
    simulator: Simulator,
    journal: Mutex<File>,
}

impl JournaledSimulator {
    /// Opens (or creates) the journal at `path` and replays it.
    pub async fn open(
        path: &Path,
        config: SimulatorConfig,
    ) -> Result<JournaledSimulator, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let simulator = Simulator::new(config);
        if path.exists() {
            let reader = BufReader::new(File::open(path).map_err(io)?);
            for (index, line) in reader.lines().enumerate() {
                let line = line.map_err(io)?;
                let entry: Entry =
                    serde_json::from_str(&line).map_err(|err| JournalError::Corrupt {
                        path: path.to_owned(),
                        line: index + 1,
                        message: err.to_string(),
                    })?;
                replay(&simulator, &entry)
                    .await
                    .map_err(|message| JournalError::Corrupt {
                        path: path.to_owned(),
                        line: index + 1,
                        message,
                    })?;
            }
        }
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(JournaledSimulator {
            simulator,
            journal: Mutex::new(journal),
        })
    }

    /// An authorization lapses at the processor (see [`Simulator::expire_authorization`]),
    /// journaled.
    pub fn expire_authorization(&self, reference: &str) -> Result<ProcessorEvent, PaymentError> {
        let event = self.simulator.expire_authorization(reference);
        self.record("expire", "", reference, 0)?;
        event
    }

    /// The bank takes captured money back (see [`Simulator::chargeback`]), journaled.
    pub fn chargeback(
        &self,
        reference: &str,
        amount_cents: i64,
    ) -> Result<ProcessorEvent, PaymentError> {
        let event = self.simulator.chargeback(reference, amount_cents);
        self.record("chargeback", "", reference, amount_cents)?;
        event
    }

    /// A refund is not paid out (see [`Simulator::reverse_refund`]), journaled.
    pub fn reverse_refund(&self, refund_reference: &str) -> Result<ProcessorEvent, PaymentError> {
        let event = self.simulator.reverse_refund(refund_reference);
        self.record("reverse_refund", "", refund_reference, 0)?;
        event
    }

    /// The simulator holding the replayed books.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Appends a call and flushes it to disk: after this, the call happened.
    fn record(
        &self,
        call: &str,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<(), PaymentError> {
        let entry = Entry {
            call: call.to_owned(),
            key: key.to_owned(),
            reference: reference.to_owned(),
            amount_cents,
        };
        let mut line = serde_json::to_string(&entry)
            .map_err(|err| PaymentError::Unavailable(format!("journal: {err}")))?;
        line.push('\n');
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        journal
            .write_all(line.as_bytes())
            .and_then(|()| journal.sync_data())
            .map_err(|err| PaymentError::Unavailable(format!("journal: {err}")))
    }
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
        let answer = self.simulator.authorize(key, amount_cents).await;
        self.record("authorize", key, "", amount_cents)?;
        answer
    }

    async fn capture(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<(), PaymentError> {
        let answer = self.simulator.capture(key, reference, amount_cents).await;
        self.record("capture", key, reference, amount_cents)?;
        answer
    }

    async fn void(&self, key: &str, reference: &str) -> Result<(), PaymentError> {
        let answer = self.simulator.void(key, reference).await;
        self.record("void", key, reference, 0)?;
        answer
    }

    async fn refund(
        &self,
        key: &str,
        reference: &str,
        amount_cents: i64,
    ) -> Result<String, PaymentError> {
        let answer = self.simulator.refund(key, reference, amount_cents).await;
        self.record("refund", key, reference, amount_cents)?;
        answer
    }

    async fn balance(&self, reference: &str) -> Result<Balance, PaymentError> {
        self.simulator.balance(reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        first.chargeback(&auth.reference, 50).expect("charged back");
        first.reverse_refund(&refund).expect("reversed");
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
