//! Conformance checks: the webhook inbox (deduplication, what is pending, outcomes).

use super::*;

/// Receives `external_id` from `source` at minute `n`, committed: whether it was new.
async fn receive(
    store: &dyn Store,
    source: &str,
    external_id: &str,
    payload: &Value,
    n: i64,
) -> bool {
    let mut tx = ok!(store.begin());
    let new = ok!(tx.inbox_receive(source, external_id, payload, at(n)));
    ok!(tx.commit());
    new
}

fn ids(messages: &[InboxMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.external_id.as_str()).collect()
}

pub(super) async fn the_inbox_keeps_a_message_once(store: Arc<dyn Store>, _raw: RawSql) {
    let first = json!({"event": "pick_up", "tracking": "T-1", "n": [1, 2]});
    let second = json!({"event": "deliver", "tracking": "T-1"});
    assert!(receive(&*store, "dhl", "evt-1", &first, 1).await);
    assert!(
        !receive(&*store, "dhl", "evt-1", &second, 2).await,
        "a duplicate"
    );
    // The same id from another source is another message.
    assert!(receive(&*store, "ups", "evt-1", &second, 3).await);
    let expected = InboxMessage {
        source: "dhl".into(),
        external_id: "evt-1".into(),
        payload: first.clone(),
        received_at: at(1),
        processed_at: None,
        outcome: None,
    };
    assert_eq!(
        ok!(store.inbox("dhl")),
        std::slice::from_ref(&expected),
        "the first payload is kept"
    );
    assert_eq!(ok!(store.inbox("ups"))[0].payload, second);
    assert_eq!(ok!(store.inbox("fedex")), []);

    // A duplicate within one transaction, and a rolled-back receipt.
    let mut tx = ok!(store.begin());
    assert!(ok!(tx.inbox_receive("dhl", "evt-2", &second, at(4))));
    assert!(!ok!(tx.inbox_receive("dhl", "evt-2", &first, at(5))));
    assert!(!ok!(tx.inbox_receive("dhl", "evt-1", &second, at(5))));
    ok!(tx.rollback());
    assert_eq!(ok!(store.inbox("dhl")), [expected]);
    assert!(
        receive(&*store, "dhl", "evt-2", &second, 6).await,
        "never stored"
    );
    assert_eq!(ids(&ok!(store.inbox("dhl"))), ["evt-1", "evt-2"]);
}

pub(super) async fn inbox_pending_is_oldest_first_and_limited(store: Arc<dyn Store>, _raw: RawSql) {
    let payload = json!({"n": 1});
    // Received out of order; three at minute 2, ordered by external id byte-wise.
    for (id, n) in [("c", 3), ("b", 2), ("a", 2), ("Z", 2), ("d", 1)] {
        assert!(receive(&*store, "dhl", id, &payload, n).await);
    }
    assert!(receive(&*store, "ups", "0", &payload, 0).await);
    let mut tx = ok!(store.begin());
    assert_eq!(
        ids(&ok!(tx.inbox_pending("dhl", 10))),
        ["d", "Z", "a", "b", "c"]
    );
    assert_eq!(ids(&ok!(tx.inbox_pending("dhl", 2))), ["d", "Z"]);
    assert_eq!(ok!(tx.inbox_pending("dhl", 0)), []);
    assert_eq!(ids(&ok!(tx.inbox_pending("ups", 10))), ["0"]);
    assert_eq!(ok!(tx.inbox_pending("fedex", 10)), []);
    let pending = ok!(tx.inbox_pending("dhl", 1));
    assert_eq!(
        (pending[0].received_at, &pending[0].payload),
        (at(1), &payload)
    );
    assert_eq!(
        (pending[0].processed_at, &pending[0].outcome),
        (None, &None)
    );
    ok!(tx.rollback());
    assert_eq!(ids(&ok!(store.inbox("dhl"))), ["d", "Z", "a", "b", "c"]);
}

pub(super) async fn inbox_done_records_the_outcome(store: Arc<dyn Store>, _raw: RawSql) {
    let payload = json!({"n": 1});
    for (id, n) in [("evt-1", 1), ("evt-2", 2), ("evt-3", 3)] {
        assert!(receive(&*store, "dhl", id, &payload, n).await);
    }
    let mut tx = ok!(store.begin());
    ok!(tx.inbox_done("dhl", "evt-2", "applied", at(10)));
    assert_eq!(ids(&ok!(tx.inbox_pending("dhl", 10))), ["evt-1", "evt-3"]);
    // Refusals leave the transaction usable.
    let unknown = tx.inbox_done("dhl", "evt-9", "applied", at(10)).await;
    assert_invalid(unknown, "a message never received");
    let elsewhere = tx.inbox_done("ups", "evt-1", "applied", at(10)).await;
    assert_invalid(elsewhere, "a message of another source");
    ok!(tx.inbox_done("dhl", "evt-1", "ignored: unknown tracking number", at(11)));
    ok!(tx.commit());

    let mut tx = ok!(store.begin());
    assert_eq!(ids(&ok!(tx.inbox_pending("dhl", 10))), ["evt-3"]);
    // A message received again once done stays done.
    assert!(!ok!(tx.inbox_receive("dhl", "evt-2", &payload, at(12))));
    ok!(tx.commit());
    let inbox = ok!(store.inbox("dhl"));
    let state: Vec<_> = inbox
        .iter()
        .map(|m| (m.external_id.as_str(), m.processed_at, m.outcome.as_deref()))
        .collect();
    assert_eq!(
        state,
        [
            (
                "evt-1",
                Some(at(11)),
                Some("ignored: unknown tracking number")
            ),
            ("evt-2", Some(at(10)), Some("applied")),
            ("evt-3", None, None),
        ]
    );
    assert_eq!(ok!(store.inbox("ups")), []);
}
