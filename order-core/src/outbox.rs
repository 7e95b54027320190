//! The outbox dispatcher: delivers the notifications that transitions wrote to the
//! `outbox` table, after their transaction committed.
//!
//! A transition writes its notifications in the same database transaction as its state
//! change, so a notification exists if and only if the transition happened. Sending
//! them is this module's job, separately and retried until it succeeds.
//!
//! **Delivery is at least once.** A message is marked delivered only after the
//! [`Notifier`] accepted it, so a crash, a failed `mark_delivered` or two dispatchers
//! polling the same database (several processes on PostgreSQL) can deliver a message
//! again. Consumers drop repeats by the message's `dedupe_key`
//! (`order:<id>:<seq>:<kind>`), which is unique per notification. Order is kept within
//! a round (oldest first) but not across retries: a message that failed is retried
//! later, while newer messages of the same order may go out in the meantime.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::store::Store;
use crate::types::OutboxMessage;

/// Where notifications go: email, a message broker, a webhook.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Hands one message over. An error (a short description) means the message was
    /// not accepted; it is retried after a backoff. A notifier may see a message more
    /// than once and should pass its `dedupe_key` on so that consumers can drop
    /// repeats.
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), String>;
}

/// How long to wait before retrying a failed delivery: `base * 2^attempts`, at most
/// `max`. Exponential, so that a consumer that is down for a while is not hammered,
/// and capped, so that it is not forgotten either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

/// One second, doubling up to ten minutes.
impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The wait after a message that had failed `attempts` times before fails again
    /// (negative counts are treated as 0).
    pub fn delay(&self, attempts: i64) -> Duration {
        let exponent = u32::try_from(attempts.max(0)).unwrap_or(u32::MAX);
        2u32.checked_pow(exponent)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// When to try again a message that had failed `attempts` times and fails `now`.
    pub fn next_attempt(&self, now: DateTime<Utc>, attempts: i64) -> DateTime<Utc> {
        TimeDelta::from_std(self.delay(attempts))
            .ok()
            .and_then(|delay| now.checked_add_signed(delay))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// What one dispatch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: usize,
    pub failed: usize,
}

impl DispatchReport {
    /// No message was due.
    pub fn is_idle(&self) -> bool {
        self.delivered == 0 && self.failed == 0
    }

    fn add(&mut self, other: DispatchReport) {
        self.delivered += other.delivered;
        self.failed += other.failed;
    }
}

/// The most rounds `run_until_idle` runs, so that a zero backoff and a notifier that
/// always fails cannot keep it busy forever.
const MAX_ROUNDS: usize = 1000;

/// Delivers due outbox messages through a notifier, marking each delivered or failed.
#[derive(Debug)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    backoff: Backoff,
    batch: i64,
}

impl Dispatcher {
    /// A dispatcher with the default backoff, fetching 100 messages per round.
    pub fn new(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>) -> Dispatcher {
        Dispatcher {
            store,
            notifier,
            backoff: Backoff::default(),
            batch: 100,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Dispatcher {
        self.backoff = backoff;
        self
    }

    /// How many messages one round fetches (at least one).
    pub fn with_batch(mut self, batch: i64) -> Dispatcher {
        self.batch = batch.max(1);
        self
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// One round: fetches up to a batch of messages due at `now`, oldest first, and
    /// delivers each. A delivered message is marked delivered; a refused one is
    /// counted and scheduled for `now` plus the backoff of its earlier attempts. A
    /// store error ends the round; what was already marked stays marked, and a message
    /// delivered but not yet marked goes out again later (at least once).
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        for message in self.store.due_messages(now, self.batch).await? {
            match self.notifier.deliver(&message).await {
                Ok(()) => {
                    self.store.mark_delivered(message.id, now).await?;
                    report.delivered += 1;
                }
                Err(error) => {
                    let next = self.backoff.next_attempt(now, message.attempts);
                    tracing::debug!(
                        id = message.id,
                        dedupe_key = %message.dedupe_key,
                        attempts = message.attempts + 1,
                        %next,
                        %error,
                        "outbox delivery failed"
                    );
                    self.store.mark_failed(message.id, &error, next).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Runs rounds at `now` until one finds nothing due, so that a backlog larger than
    /// a batch drains in one call. Failed messages are rescheduled after `now`, so they
    /// do not come back in the same call unless the backoff is zero; the number of
    /// rounds is bounded either way. Returns the sum of the rounds.
    pub async fn run_until_idle(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut total = DispatchReport::default();
        for _ in 0..MAX_ROUNDS {
            let round = self.run_once(now).await?;
            if round.is_idle() {
                break;
            }
            total.add(round);
        }
        Ok(total)
    }

    /// Polls in the background: drains what is due at `Utc::now()`, then waits
    /// `interval`, until `shutdown` holds `true` or its sender is dropped. Store errors
    /// are logged and the next poll tries again, because a database that is briefly
    /// unreachable must not stop notifications for good. A round in progress finishes
    /// before shutdown is seen.
    pub fn spawn(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow_and_update() {
                    break;
                }
                match self.run_until_idle(Utc::now()).await {
                    Ok(report) if !report.is_idle() => tracing::debug!(
                        delivered = report.delivered,
                        failed = report.failed,
                        "outbox dispatched"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "outbox dispatch failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    }
}

#[derive(Debug, Default)]
struct Recording {
    delivered: Vec<OutboxMessage>,
    fail_next: usize,
    failures: usize,
}

/// A notifier that keeps what it is given, for tests and `orderctl simulate`. Like a
/// real consumer it can be down (`fail_next`) and it sees repeats when a message is
/// delivered twice: it records every accepted delivery, duplicates included, so that
/// tests can check at-least-once delivery and deduplication.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    inner: Mutex<Recording>,
}

impl RecordingNotifier {
    pub fn new() -> RecordingNotifier {
        RecordingNotifier::default()
    }

    /// Makes the next `n` deliveries fail (replacing any count still pending).
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Every accepted delivery, in order, duplicates included.
    pub fn delivered(&self) -> Vec<OutboxMessage> {
        self.lock().delivered.clone()
    }

    /// How many deliveries were refused.
    pub fn failures(&self) -> usize {
        self.lock().failures
    }

    /// Nothing panics while the lock is held, so a poisoned lock still holds
    /// consistent data.
    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), String> {
        let mut inner = self.lock();
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            inner.failures += 1;
            return Err(format!(
                "injected delivery failure for `{}`",
                message.dedupe_key
            ));
        }
        inner.delivered.push(message.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::State;
    use crate::store::NewMessage;
    use crate::store::sqlite::SqliteStore;
    use crate::types::{NewOrder, OrderId};

    fn message(id: i64) -> OutboxMessage {
        OutboxMessage {
            id,
            aggregate: OrderId(1),
            kind: "order_confirmed".to_owned(),
            payload: serde_json::json!({ "order": 1 }),
            dedupe_key: format!("order:1:{id}:order_confirmed"),
            attempts: 0,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            delivered_at: None,
        }
    }

    #[test]
    fn backoff_doubles_from_base_up_to_max() {
        let backoff = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(backoff.delay(0), Duration::from_secs(2));
        assert_eq!(backoff.delay(1), Duration::from_secs(4));
        assert_eq!(backoff.delay(4), Duration::from_secs(32));
        assert_eq!(backoff.delay(5), Duration::from_secs(60));
        assert_eq!(backoff.delay(-3), Duration::from_secs(2));
        for huge in [31, 32, 64, 1_000, i64::MAX] {
            assert_eq!(backoff.delay(huge), Duration::from_secs(60), "{huge}");
        }
    }

    #[test]
    fn backoff_schedules_after_now_and_never_overflows() {
        let backoff = Backoff::default();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(backoff.next_attempt(now, 0), now + TimeDelta::seconds(1));
        assert_eq!(backoff.next_attempt(now, 50), now + TimeDelta::seconds(600));
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.next_attempt(now, 0), DateTime::<Utc>::MAX_UTC);
    }

    /// A migrated in-memory SQLite store holding one order and one message of each
    /// kind, all enqueued at `at`.
    async fn store_with(kinds: &[&str], at: DateTime<Utc>) -> (Arc<SqliteStore>, OrderId) {
        let store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite opens");
        store.migrate().await.expect("schema migrates");
        store
            .add_product("SKU-1", "Widget", 500, 10)
            .await
            .expect("product added");
        let order = store
            .create_order(
                &NewOrder::new("ada@example.com", &[("SKU-1", 1)]),
                State::Pending,
                at,
            )
            .await
            .expect("order created")
            .id;
        let mut tx = store.begin().await.expect("transaction begins");
        for (seq, kind) in kinds.iter().enumerate() {
            let payload = serde_json::json!({ "order": order.0 });
            let dedupe_key = format!("order:{order}:{seq}:{kind}");
            tx.enqueue(&NewMessage {
                aggregate: order,
                kind,
                payload: &payload,
                dedupe_key: &dedupe_key,
                at,
            })
            .await
            .expect("message enqueued");
        }
        tx.commit().await.expect("transaction commits");
        (Arc::new(store), order)
    }

    fn kinds(messages: &[OutboxMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.kind.as_str()).collect()
    }

    #[tokio::test]
    async fn dispatcher_delivers_retries_with_backoff_and_drains_in_batches() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let (store, order) = store_with(&["placed", "paid", "shipped"], t0).await;
        let notifier = Arc::new(RecordingNotifier::new());
        let dispatcher = Dispatcher::new(store.clone(), notifier.clone())
            .with_backoff(Backoff {
                base: Duration::from_secs(10),
                max: Duration::from_secs(60),
            })
            .with_batch(2);

        notifier.fail_next(1);
        let report = dispatcher.run_until_idle(t0).await.expect("dispatched");
        assert_eq!(
            report,
            DispatchReport {
                delivered: 2,
                failed: 1
            }
        );
        assert_eq!(kinds(&notifier.delivered()), ["paid", "shipped"]);
        let stored = store.messages(order).await.expect("messages read");
        assert_eq!(stored[0].attempts, 1);
        assert_eq!(stored[0].delivered_at, None);
        assert!(stored[1..].iter().all(|m| m.delivered_at == Some(t0)));

        let not_yet = t0 + TimeDelta::seconds(9);
        assert!(dispatcher.run_once(not_yet).await.expect("ran").is_idle());

        // The second failure waits twice as long: 10 s after the first, 20 s after this.
        let t1 = t0 + TimeDelta::seconds(10);
        notifier.fail_next(1);
        let report = dispatcher.run_once(t1).await.expect("ran");
        assert_eq!(
            report,
            DispatchReport {
                delivered: 0,
                failed: 1
            }
        );
        let not_yet = t1 + TimeDelta::seconds(19);
        assert!(
            dispatcher
                .run_until_idle(not_yet)
                .await
                .expect("ran")
                .is_idle()
        );

        let t2 = t1 + TimeDelta::seconds(20);
        let report = dispatcher.run_until_idle(t2).await.expect("ran");
        assert_eq!(
            report,
            DispatchReport {
                delivered: 1,
                failed: 0
            }
        );
        assert_eq!(kinds(&notifier.delivered()), ["paid", "shipped", "placed"]);
        let stored = store.messages(order).await.expect("messages read");
        assert_eq!(stored[0].attempts, 2);
        assert_eq!(stored[0].delivered_at, Some(t2));
        assert_eq!(notifier.failures(), 2);

        let later = t2 + TimeDelta::days(1);
        assert!(
            dispatcher
                .run_until_idle(later)
                .await
                .expect("ran")
                .is_idle()
        );
    }

    #[tokio::test]
    async fn spawned_dispatcher_polls_until_shutdown() {
        let at = Utc::now() - TimeDelta::seconds(1);
        let (store, order) = store_with(&["placed", "paid"], at).await;
        let notifier = Arc::new(RecordingNotifier::new());
        notifier.fail_next(1);
        let dispatcher = Arc::new(
            Dispatcher::new(store.clone(), notifier.clone()).with_backoff(Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(20),
            }),
        );
        let (stop, shutdown) = watch::channel(false);
        let handle = dispatcher.spawn(Duration::from_millis(10), shutdown);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while notifier.delivered().len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not delivered in time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).expect("the dispatcher listens");
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("stops on shutdown")
            .expect("did not panic");
        assert_eq!(kinds(&notifier.delivered()), ["paid", "placed"]);
        let stored = store.messages(order).await.expect("messages read");
        assert!(stored.iter().all(|m| m.delivered_at.is_some()));
    }

    #[tokio::test]
    async fn spawned_dispatcher_stops_when_the_sender_is_dropped() {
        let (store, _) = store_with(&[], Utc::now()).await;
        let dispatcher = Arc::new(Dispatcher::new(store, Arc::new(RecordingNotifier::new())));
        let (stop, shutdown) = watch::channel(false);
        let handle = dispatcher.spawn(Duration::from_secs(3600), shutdown);
        drop(stop);
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("stops when nobody can ask it to")
            .expect("did not panic");
    }

    #[tokio::test]
    async fn recording_notifier_keeps_every_delivery_in_order() {
        let notifier = RecordingNotifier::new();
        notifier.deliver(&message(1)).await.expect("accepted");
        notifier.deliver(&message(2)).await.expect("accepted");
        notifier
            .deliver(&message(1))
            .await
            .expect("a repeat is accepted too");
        let ids: Vec<i64> = notifier.delivered().iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 2, 1]);
        assert_eq!(notifier.failures(), 0);
    }

    #[tokio::test]
    async fn recording_notifier_fails_the_next_n_deliveries() {
        let notifier = RecordingNotifier::new();
        notifier.fail_next(2);
        let err = notifier
            .deliver(&message(1))
            .await
            .expect_err("first fails");
        assert!(err.contains("order:1:1:order_confirmed"), "{err}");
        assert!(notifier.deliver(&message(1)).await.is_err());
        notifier.deliver(&message(1)).await.expect("third succeeds");
        assert_eq!(notifier.failures(), 2);
        assert_eq!(notifier.delivered().len(), 1);
    }
}
