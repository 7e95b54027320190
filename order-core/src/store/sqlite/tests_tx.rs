//! SQLite's own write transactions: `BEGIN IMMEDIATE` takes the write lock at the start,
//! so that writers on one file take turns. What a transaction writes is the `Store`
//! conformance suite's, run on every adapter.

use std::sync::Arc;

use super::SqliteStore;
use super::tests::{at, order};
use crate::error::StoreError;
use crate::store::Store;
use crate::types::ProductId;

const A: ProductId = ProductId(1);

/// Writers on one file take turns under `BEGIN IMMEDIATE`: none fails busy, none oversells.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_on_a_file_never_oversell_nor_fail_busy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    store.add_product("A", "Apple", 250, 10).await.expect("add");
    let mut orders = Vec::new();
    for n in 0..24 {
        orders.push(order(&store, &format!("c{n}@example.com"), &[("A", 1)]).await);
    }
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|order| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // Read, then write: BEGIN IMMEDIATE makes the upgrade impossible to lose.
                let mut tx = store.begin().await?;
                let products = tx.lock_products(&[A]).await?;
                let mut reserved = false;
                if products[0].available() >= 1 {
                    reserved = tx.reserve(order.id, A, 1, at(1)).await?;
                }
                let current = tx.lock_order(order.id).await?.expect("order exists");
                tx.update_order(&current, at(2)).await?;
                tx.commit().await?;
                Ok::<bool, StoreError>(reserved)
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.expect("task").expect("no busy errors") {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    let product = store.product("A").await.expect("read").expect("stored");
    assert_eq!((product.on_hand, product.reserved), (10, 10));
    assert_eq!(store.verify().await.expect("verify"), []);
}
