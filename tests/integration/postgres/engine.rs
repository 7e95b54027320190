//! The engine's pipeline on PostgreSQL: row locks make concurrent commands safe.

use std::sync::Arc;

use order_core::order::{Event, State};
use order_core::{Actor, Command, Engine, FireError, NewOrder, OrderId, Outcome, Store};

use super::connect;

async fn engine() -> Engine {
    let store = connect().await;
    store.migrate().await.expect("migrate");
    store
        .add_product("SCARCE", "Scarce", 100, 10)
        .await
        .expect("add");
    Engine::new(Arc::new(store))
}

async fn new_order(engine: &Engine, n: usize) -> OrderId {
    engine
        .create_order(&NewOrder::new(
            format!("c{n}@example.com"),
            &[("SCARCE", 1)],
        ))
        .await
        .expect("create")
        .id
}

/// Fires `command` at each of `orders` at once, one task each; the results in order.
async fn fire_at_once(
    engine: &Arc<Engine>,
    orders: Vec<OrderId>,
    command: Command,
) -> Vec<Result<Outcome, FireError>> {
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|id| {
            let (engine, command) = (Arc::clone(engine), command.clone());
            tokio::spawn(async move { engine.fire(id, command).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

fn confirm() -> Command {
    Command::new(Event::Confirm, Actor::system())
}

/// Confirmations of more orders than there is stock confirm exactly the stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_confirmations_never_oversell() {
    let engine = Arc::new(engine().await);
    let mut orders = Vec::new();
    for n in 0..24 {
        orders.push(new_order(&engine, n).await);
    }
    let mut confirmed = 0;
    for result in fire_at_once(&engine, orders, confirm()).await {
        match result {
            Ok(_) => confirmed += 1,
            Err(FireError::GuardFailed { .. } | FireError::ActionFailed { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(confirmed, 10);
    let stock = engine
        .store()
        .product("SCARCE")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((stock.on_hand, stock.reserved), (10, 10));
    assert_eq!(engine.store().verify().await.expect("verify"), []);
}

/// One order confirmed by many tasks at once moves once; the others see it moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn one_order_fired_at_once_moves_once() {
    let engine = Arc::new(engine().await);
    let id = new_order(&engine, 0).await;
    let mut moved = 0;
    for result in fire_at_once(&engine, vec![id; 8], confirm()).await {
        match result {
            Ok(outcome) => {
                moved += 1;
                assert_eq!((outcome.to, outcome.seq), (State::Confirmed, 1));
            }
            Err(FireError::InvalidTransition { state, .. }) => {
                assert_eq!(state, State::Confirmed, "they waited for the first");
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(moved, 1);
    assert_eq!(engine.store().history(id).await.expect("history").len(), 1);
    assert_eq!(engine.store().verify().await.expect("verify"), []);
}

/// One command sent by many tasks at once with one key runs once; the others replay it.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn one_command_sent_at_once_runs_once_and_replays() {
    let engine = Arc::new(engine().await);
    let id = new_order(&engine, 0).await;
    let outcomes = fire_at_once(&engine, vec![id; 8], confirm().key("confirm-once")).await;
    let replayed = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|o| o.replayed))
        .count();
    assert!(
        outcomes.iter().all(Result::is_ok),
        "every copy succeeds: {outcomes:?}"
    );
    assert_eq!(replayed, 7);
}
