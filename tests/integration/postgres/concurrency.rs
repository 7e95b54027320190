//! Concurrent writers on PostgreSQL: reservations under row locks or a conditional
//! update alone, and first orders of one new customer.

use std::sync::Arc;

use order_core::order::State;
use order_core::{NewOrder, OrderQuery, ProductId, Store, StoreError};

use super::{at, order, store};

const A: ProductId = ProductId(1);

/// Concurrent reservations never oversell, with the products locked first or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reservations_never_oversell() {
    let store = Arc::new(store().await);
    store
        .add_product("C", "Cherry", 10, 10)
        .await
        .expect("add C");
    let c = ProductId(3);
    // 16 transactions each reserve 1 of A's 10: with the products locked first (as the
    // engine does), and of C's 10 with the conditional update alone.
    for (product, lock_first) in [(A, true), (c, false)] {
        let mut orders = Vec::new();
        for n in 0..16 {
            orders.push(order(&store, &format!("c{n}@example.com"), &[("A", 1)]).await);
        }
        let tasks: Vec<_> = orders
            .into_iter()
            .map(|order| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut tx = store.begin().await?;
                    if lock_first {
                        let products = tx.lock_products(&[product]).await?;
                        assert_eq!(products.len(), 1);
                    }
                    let reserved = tx.reserve(order.id, product, 1, at(1)).await?;
                    let current = tx.lock_order(order.id).await?.expect("order exists");
                    assert!(tx.update_order(&current, at(2)).await?);
                    tx.commit().await?;
                    Ok::<bool, StoreError>(reserved)
                })
            })
            .collect();
        let mut reserved = 0;
        for task in tasks {
            if task.await.expect("task").expect("no database error") {
                reserved += 1;
            }
        }
        assert_eq!(
            reserved, 10,
            "product {product}, locked first: {lock_first}"
        );
        let stock = store
            .products()
            .await
            .expect("read")
            .into_iter()
            .find(|p| p.id == product)
            .expect("stored");
        assert_eq!((stock.on_hand, stock.reserved), (10, 10));
    }
    assert_eq!(store.verify().await.expect("verify"), []);
}

/// Concurrent first orders of one new customer all succeed, as one customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_orders_of_one_customer_all_succeed() {
    let store = store().await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_order(
                        &NewOrder::new("new@example.com", &[("A", 1)]),
                        State::Pending,
                        at(0),
                    )
                    .await
            })
        })
        .collect();
    let mut customers = Vec::new();
    for task in tasks {
        customers.push(task.await.expect("task").expect("created").customer);
    }
    customers.dedup();
    assert_eq!(customers.len(), 1, "one customer: {customers:?}");
    let orders = store.list(&OrderQuery::new()).await.expect("list");
    assert_eq!(orders.len(), 16);
}
