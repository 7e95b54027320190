//! Refusals and errors on PostgreSQL, which aborts a transaction at its first failed
//! statement: the transition's writes check their rules inside the statement and other
//! refusable writes run in savepoints, so a refusal leaves the transaction usable;
//! serialization failures and deadlocks are told apart as worth retrying.

use order_core::order::State;
use order_core::store::NewMessage;
use order_core::store::postgres::is_retryable;
use order_core::{OrderId, Store, StoreError};

use super::{at, confirm_row, exec, order, store, until_someone_waits_for_a_lock};

/// Refused audit rows, messages and order writes leave the transaction usable to commit.
#[tokio::test]
async fn refusals_leave_the_transaction_usable() {
    let store = store().await;
    let order = order(&store, "ann@example.com", &[("A", 1)]).await;
    let row = |seq| confirm_row(order.id, seq, 1);
    let payload = serde_json::json!({ "n": 1 });
    let message = |dedupe_key| NewMessage {
        aggregate: order.id,
        kind: "moved",
        payload: &payload,
        dedupe_key,
        at: at(1),
    };
    let mut tx = store.begin().await.expect("begin");
    let err = tx
        .append_transition(&row(2))
        .await
        .expect_err("seq 2 first");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("seq must follow")),
        "{err}"
    );
    let mut missing = row(1);
    missing.order = OrderId(999);
    assert!(matches!(
        tx.append_transition(&missing).await,
        Err(StoreError::Invalid(_))
    ));
    tx.append_transition(&row(1)).await.expect("seq 1");
    assert!(matches!(
        tx.append_transition(&row(1)).await,
        Err(StoreError::Invalid(_))
    ));
    tx.enqueue(&message("m1")).await.expect("enqueue");
    assert!(matches!(
        tx.enqueue(&message("m1")).await,
        Err(StoreError::Invalid(_))
    ));
    let mut negative = order.clone();
    negative.total_cents = -1;
    assert!(matches!(
        tx.update_order(&negative, at(1)).await,
        Err(StoreError::Invalid(_))
    ));
    let mut confirmed = order.clone();
    confirmed.state = State::Confirmed;
    assert!(tx.update_order(&confirmed, at(1)).await.expect("update"));
    tx.commit()
        .await
        .expect("every refusal left the transaction usable");
    assert_eq!(store.history(order.id).await.expect("history").len(), 1);
    assert_eq!(store.messages(order.id).await.expect("messages").len(), 1);
    assert_eq!(store.verify().await.expect("verify"), []);
}

/// Serialization failures and deadlocks are worth retrying; refusals and other errors are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_and_deadlocks_are_retryable() {
    let store = store().await;

    // REPEATABLE READ: a row changed since the snapshot cannot be updated.
    let mut reader = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .expect("begin");
    let _: i64 = sqlx::query_scalar("SELECT reserved FROM products WHERE id = 1")
        .fetch_one(&mut *reader)
        .await
        .expect("take the snapshot");
    exec(&store, "UPDATE products SET name = 'Apricot' WHERE id = 1")
        .await
        .expect("a concurrent write");
    let err = sqlx::query("UPDATE products SET name = 'Avocado' WHERE id = 1")
        .execute(&mut *reader)
        .await
        .expect_err("a serialization failure");
    reader.rollback().await.expect("rollback");
    let err = StoreError::Database(err);
    assert!(is_retryable(&err), "{err}");

    // Two transactions locking two rows in opposite orders: one is chosen to fail.
    let (mut first, mut second) = (
        store.pool().begin().await.expect("begin"),
        store.pool().begin().await.expect("begin"),
    );
    let superuser: bool = sqlx::query_scalar("SELECT current_setting('is_superuser') = 'on'")
        .fetch_one(store.pool())
        .await
        .expect("read a setting");
    if superuser {
        // Detected sooner than after the default second (only superusers may ask).
        for tx in [&mut first, &mut second] {
            sqlx::query("SET LOCAL deadlock_timeout = '50ms'")
                .execute(&mut **tx)
                .await
                .expect("set");
        }
    }
    let touch = "UPDATE products SET name = name WHERE id = $1";
    for (tx, id) in [(&mut first, 1_i64), (&mut second, 2)] {
        sqlx::query(touch)
            .bind(id)
            .execute(&mut **tx)
            .await
            .expect("lock one row");
    }
    let crossing = tokio::spawn(async move {
        let result = sqlx::query(touch).bind(2_i64).execute(&mut *first).await;
        first.rollback().await.expect("rollback");
        result.map(drop)
    });
    until_someone_waits_for_a_lock(&store).await;
    let mine = sqlx::query(touch)
        .bind(1_i64)
        .execute(&mut *second)
        .await
        .map(drop);
    second.rollback().await.expect("rollback");
    let theirs = crossing.await.expect("task");
    let failures: Vec<StoreError> = [mine, theirs]
        .into_iter()
        .filter_map(Result::err)
        .map(StoreError::Database)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(is_retryable(&failures[0]), "{}", failures[0]);

    // An error already classified is recognised too.
    assert!(is_retryable(&StoreError::Retryable(
        "classified".to_owned()
    )));

    // Refusals and other errors are not worth retrying.
    assert!(!is_retryable(&StoreError::Invalid("no".to_owned())));
    let unique = exec(
        &store,
        "INSERT INTO products (sku, name, price_cents) VALUES ('A', 'again', 1)",
    )
    .await
    .expect_err("a duplicate");
    assert!(!is_retryable(&StoreError::Database(unique)));
    assert!(!is_retryable(&StoreError::Database(
        sqlx::Error::RowNotFound
    )));
}
