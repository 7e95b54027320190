//! A real process killed between the processor's answer and its commit: `crash-at`
//! aborts at a crash point (no unwinding, no rollback sent, no undo), and the test,
//! reopening the same database and the processor's journal, reconciles. Afterwards the
//! shop's books and the processor's agree: no paid order without a captured payment,
//! nothing captured twice, `verify` clean.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::sync::Arc;

use order_core::order::State;
use order_core::payment::{JournaledSimulator, SimulatorConfig};
use order_core::{Engine, OrderId};

use super::harness::Shop;

async fn reopen(shop: &Shop, journal: &Path) -> (Engine, Arc<JournaledSimulator>) {
    let processor = JournaledSimulator::open(journal, SimulatorConfig::default())
        .await
        .expect("the journal opens");
    let processor = Arc::new(processor);
    let engine = Engine::new(shop.store.clone())
        .with_clock(shop.clock.clone())
        .with_payments(processor.clone());
    (engine, processor)
}

/// Runs `crash-at` and asserts that it was killed, not that it finished.
fn kill(shop: &Shop, journal: &Path, id: OrderId, step: &str, point: &str) {
    let url = shop.url.as_deref().expect("a shared database");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_crash-at"))
        .args([
            url,
            &journal.display().to_string(),
            &id.0.to_string(),
            step,
            point,
        ])
        .status()
        .expect("crash-at runs");
    assert_eq!(
        status.signal(),
        Some(6),
        "crash-at was not aborted: {status}"
    );
}

#[tokio::test]
async fn a_process_killed_after_the_capture_is_reconciled() {
    let shop = Shop::file().await;
    let dir = tempfile::tempdir().expect("a folder");
    let journal = dir.path().join("processor.jsonl");
    let id = shop.order_in(State::Confirmed).await;
    let (engine, _) = reopen(&shop, &journal).await;
    let attempt = engine.authorize_payment(id).await.expect("runs");
    assert_eq!(attempt.outcome, "authorized");
    drop(engine);

    kill(&shop, &journal, id, "pay", "captured");
    let (engine, processor) = reopen(&shop, &journal).await;
    let total = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists")
        .total_cents;
    assert_eq!(
        processor.simulator().total_captured(),
        total,
        "the processor captured"
    );
    assert_eq!(
        shop.state(id).await,
        State::Confirmed,
        "the shop never heard"
    );

    let done = engine.reconcile_payments().await.expect("runs");
    assert_eq!(done.captures_completed, 1, "{done:?}");
    assert_eq!(shop.state(id).await, State::Paid);
    let (_, processor) = reopen(&shop, &journal).await;
    assert_eq!(
        processor.simulator().total_captured(),
        total,
        "captured once"
    );
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_process_killed_after_the_authorization_is_reconciled() {
    let shop = Shop::file().await;
    let dir = tempfile::tempdir().expect("a folder");
    let journal = dir.path().join("processor.jsonl");
    let id = shop.order_in(State::Confirmed).await;

    kill(&shop, &journal, id, "authorize", "authorized");
    let payments = shop.store.payments(id).await.expect("readable");
    assert_eq!(payments.len(), 1);
    assert_eq!(
        payments[0].state, "initiated",
        "the intent was committed first"
    );

    let (engine, processor) = reopen(&shop, &journal).await;
    let done = engine.reconcile_payments().await.expect("runs");
    assert_eq!(done.authorizations_settled, 1, "{done:?}");
    let payments = shop.store.payments(id).await.expect("readable");
    assert_eq!(payments[0].state, "authorized");
    // The processor authorized once: the settled reference is the one it gave the
    // killed process.
    let reference = payments[0].processor_ref.clone().expect("a reference");
    let balance = order_core::payment::PaymentProcessor::balance(&*processor, &reference)
        .await
        .expect("known");
    assert_eq!(balance.authorized_cents, payments[0].amount_cents);
    shop.assert_verified().await;
}
