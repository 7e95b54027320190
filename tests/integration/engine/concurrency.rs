//! Many tasks firing conflicting commands at the same orders of one database file:
//! one winner per conflict, no lost update, no oversold stock, one run per key.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use order_core::order::{ActorKind, Event, Guard, State};
use order_core::payment::{Call, PaymentProcessor, SimulatorConfig};
use order_core::{Command, FireError, OperationError, OrderId, Outcome, PaymentStatus, ProductId};
use tokio::sync::Barrier;

use super::harness::Shop;

/// Tasks firing at once.
const TASKS: usize = 8;

/// Runs `jobs` on `TASKS` tasks that start together and take the next job as they
/// finish one; every job's result, in job order.
async fn race<J, T, F, Fut>(jobs: Vec<J>, work: F) -> Vec<(J, T)>
where
    J: Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
{
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(TASKS));
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (jobs, next, barrier, work) =
            (jobs.clone(), next.clone(), barrier.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { break };
                done.push((i, job.clone(), work(job.clone()).await));
            }
            done
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.expect("a task panicked"));
    }
    results.sort_by_key(|(i, _, _)| *i);
    assert_eq!(results.len(), jobs.len());
    results
        .into_iter()
        .map(|(_, job, result)| (job, result))
        .collect()
}

/// A shop on a database file whose payment processor takes `latency` per call, so that
/// a transition holds the write lock across it and the others queue.
async fn file_shop(latency: Duration) -> Shop {
    let (store, _url, dir) = super::harness::shared_store().await;
    let config = SimulatorConfig {
        latency,
        ..SimulatorConfig::default()
    };
    Shop::with_store(store, dir, config).await
}

/// An order in `confirmed` with its payment authorized, and its version.
async fn confirmed_and_authorized(shop: &Shop) -> (OrderId, i64) {
    let id = shop.order_in(State::Confirmed).await;
    let attempt = shop
        .engine
        .authorize_payment(id)
        .await
        .expect("authorization runs");
    assert_eq!(attempt.outcome, "authorized");
    let order = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists");
    (id, order.version)
}

async fn held(shop: &Shop, id: OrderId) -> Vec<(ProductId, i64)> {
    let mut tx = shop.store.begin().await.expect("a transaction");
    let held = tx.reserved_by(id).await.expect("the ledger is readable");
    tx.rollback().await.expect("rolled back");
    held
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Pay(OrderId),
    Cancel(OrderId),
    ChangeAddress(OrderId),
}

#[derive(Debug)]
enum Done {
    Fired(Result<Outcome, FireError>),
    Operated(Result<(), OperationError>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pay_and_cancel_race_for_each_order_and_exactly_one_wins() {
    const ORDERS: usize = 20;
    let shop = Arc::new(file_shop(Duration::from_millis(1)).await);
    let mut versions = BTreeMap::new();
    for _ in 0..ORDERS {
        let (id, version) = confirmed_and_authorized(&shop).await;
        versions.insert(id, version);
    }
    // Each order's conflicting commands are next to each other in the queue, so that
    // different tasks pick them up at the same time; the first alternates.
    let mut jobs = Vec::new();
    for (n, id) in versions.keys().enumerate() {
        let (pay, cancel) = (Job::Pay(*id), Job::Cancel(*id));
        jobs.extend(if n % 2 == 0 {
            [pay, cancel]
        } else {
            [cancel, pay]
        });
        jobs.push(Job::ChangeAddress(*id));
    }
    let fired = jobs
        .iter()
        .filter(|job| !matches!(job, Job::ChangeAddress(_)))
        .count();
    let worker = shop.clone();
    let started = Instant::now();
    let results = race(jobs, move |job| {
        let shop = worker.clone();
        async move {
            let customer = Shop::actor(ActorKind::Customer);
            match job {
                Job::Pay(id) => Done::Fired(
                    shop.engine
                        .fire(id, Command::new(Event::Pay, customer))
                        .await,
                ),
                Job::Cancel(id) => Done::Fired(
                    shop.engine
                        .fire(id, Command::new(Event::Cancel, customer))
                        .await,
                ),
                Job::ChangeAddress(id) => {
                    Done::Operated(shop.engine.change_address(id, "Elsewhere 1").await)
                }
            }
        }
    })
    .await;
    let elapsed = started.elapsed();

    let mut winners: BTreeMap<OrderId, State> = BTreeMap::new();
    let mut addressed: BTreeMap<OrderId, bool> = BTreeMap::new();
    for (job, done) in &results {
        match (job, done) {
            (Job::Pay(id) | Job::Cancel(id), Done::Fired(Ok(outcome))) => {
                let want = if matches!(job, Job::Pay(_)) {
                    State::Paid
                } else {
                    State::Cancelled
                };
                assert_eq!(
                    (outcome.from, outcome.to, outcome.seq),
                    (State::Confirmed, want, 2),
                    "{job:?}"
                );
                assert!(
                    winners.insert(*id, want).is_none(),
                    "two winners on order {id}"
                );
            }
            (Job::Pay(_) | Job::Cancel(_), Done::Fired(Err(err))) => {
                assert!(
                    matches!(
                        err,
                        FireError::InvalidTransition {
                            state: State::Paid | State::Cancelled,
                            ..
                        }
                    ),
                    "{job:?} lost with {err}"
                );
            }
            (Job::ChangeAddress(id), Done::Operated(result)) => {
                if let Err(err) = result {
                    assert!(
                        matches!(
                            err,
                            OperationError::NotAllowed {
                                state: State::Cancelled,
                                ..
                            }
                        ),
                        "{job:?}: {err}"
                    );
                }
                addressed.insert(*id, result.is_ok());
            }
            other => panic!("a mismatched result: {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        ORDERS,
        "every order has exactly one winner: {winners:?}"
    );

    let calls = shop.payments.calls();
    let (mut paid, mut cancelled) = (0, 0);
    for (id, state) in &winners {
        let order = shop
            .store
            .order(*id)
            .await
            .expect("readable")
            .expect("exists");
        assert_eq!(order.state, *state);
        let address_written = addressed[id];
        assert_eq!(
            order.shipping_address.is_some(),
            address_written,
            "order {id}"
        );
        let writes = 1 + i64::from(address_written);
        assert_eq!(
            order.version,
            versions[id] + writes,
            "order {id}: a lost or extra write"
        );
        let history = shop.store.history(*id).await.expect("readable");
        let trail: Vec<(State, State)> = history.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            trail,
            [
                (State::Pending, State::Confirmed),
                (State::Confirmed, *state)
            ],
            "order {id}"
        );
        let attempts = shop.store.attempts(*id).await.expect("readable");
        let kinds: Vec<&str> = attempts.iter().map(|a| a.error_kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["candidates:invalid_transition"],
            "order {id}: the loser is recorded"
        );

        let payment = shop
            .store
            .payments(*id)
            .await
            .expect("readable")
            .pop()
            .expect("a payment");
        let reference = payment.processor_ref.clone().expect("a reference");
        let balance = shop.payments.balance(&reference).await.expect("known");
        let prefix = format!("order-{id}-");
        let count = |kind: Call| {
            calls
                .iter()
                .filter(|(c, key)| *c == kind && key.starts_with(&prefix))
                .count()
        };
        if *state == State::Paid {
            paid += 1;
            assert_eq!(
                (payment.state.as_str(), order.payment_status),
                ("captured", PaymentStatus::Captured)
            );
            assert_eq!(
                (
                    balance.captured_cents,
                    balance.refunded_cents,
                    balance.voided
                ),
                (order.total_cents, 0, false)
            );
            assert_eq!(
                (count(Call::Capture), count(Call::Void)),
                (1, 0),
                "order {id}"
            );
            assert_eq!(
                held(&shop, *id).await.iter().map(|(_, q)| q).sum::<i64>(),
                3,
                "order {id}"
            );
        } else {
            cancelled += 1;
            assert_eq!(
                (payment.state.as_str(), order.payment_status),
                ("voided", PaymentStatus::Voided)
            );
            assert_eq!(
                (balance.captured_cents, balance.voided),
                (0, true),
                "order {id}"
            );
            assert_eq!(
                (count(Call::Capture), count(Call::Void)),
                (0, 1),
                "order {id}"
            );
            assert!(
                held(&shop, *id).await.is_empty(),
                "cancelled order {id} holds stock"
            );
        }
    }
    let products = shop.store.products().await.expect("readable");
    let reserved: BTreeMap<&str, i64> = products
        .iter()
        .map(|p| (p.sku.as_str(), p.reserved))
        .collect();
    assert_eq!(
        (reserved["WIDGET"], reserved["GADGET"]),
        (2 * paid, paid),
        "{products:?}"
    );
    assert_eq!(shop.payments.total_captured(), 4_500 * paid);
    eprintln!(
        "pay/cancel/change_address race: {paid} paid, {cancelled} cancelled; {} commands \
         ({fired} transitions fired, {ORDERS} committed) in {elapsed:?}: {:.0} commands/s, \
         {:.0} committed transitions/s",
        results.len(),
        results.len() as f64 / elapsed.as_secs_f64(),
        ORDERS as f64 / elapsed.as_secs_f64(),
    );
    shop.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_competing_for_scarce_stock_never_oversell() {
    const STOCK: i64 = 10;
    const ORDERS: usize = 30;
    let shop = Arc::new(Shop::file().await);
    let rare = shop
        .store
        .add_product("RARE", "Rare", 700, STOCK)
        .await
        .expect("a product");
    let mut ids = Vec::new();
    for _ in 0..ORDERS {
        ids.push(shop.order_of(&[("RARE", 1)]).await);
    }
    let worker = shop.clone();
    let started = Instant::now();
    let results = race(ids.clone(), move |id| {
        let shop = worker.clone();
        async move {
            shop.engine
                .fire(
                    id,
                    Command::new(Event::Confirm, Shop::actor(ActorKind::System)),
                )
                .await
        }
    })
    .await;
    let elapsed = started.elapsed();

    let mut confirmed = Vec::new();
    for (id, result) in &results {
        match result {
            Ok(outcome) => {
                assert_eq!(
                    (outcome.from, outcome.to, outcome.seq),
                    (State::Pending, State::Confirmed, 1)
                );
                confirmed.push(*id);
            }
            Err(FireError::GuardFailed {
                guard: Guard::InventoryAvailable,
                value: false,
                ..
            }) => {}
            Err(err) => panic!("order {id}: {err}"),
        }
    }
    assert_eq!(confirmed.len(), 10, "exactly the stock is confirmed");
    for id in &ids {
        let is_confirmed = confirmed.contains(id);
        let want = if is_confirmed {
            State::Confirmed
        } else {
            State::Pending
        };
        assert_eq!(shop.state(*id).await, want, "order {id}");
        let want_held = if is_confirmed {
            vec![(rare.id, 1)]
        } else {
            Vec::new()
        };
        assert_eq!(held(&shop, *id).await, want_held, "order {id}");
        let attempts = shop.store.attempts(*id).await.expect("readable");
        let kinds: Vec<&str> = attempts.iter().map(|a| a.error_kind.as_str()).collect();
        let want_kinds: &[&str] = if is_confirmed {
            &[]
        } else {
            &["guards:guard_failed"]
        };
        assert_eq!(kinds, want_kinds, "order {id}");
        assert_eq!(
            shop.store.history(*id).await.expect("readable").len(),
            usize::from(is_confirmed)
        );
    }
    let product = shop
        .store
        .product("RARE")
        .await
        .expect("readable")
        .expect("exists");
    assert_eq!(
        (product.on_hand, product.reserved),
        (STOCK, STOCK),
        "never oversold"
    );
    eprintln!(
        "scarce stock race: {ORDERS} confirms in {elapsed:?}: {:.0} commands/s",
        ORDERS as f64 / elapsed.as_secs_f64()
    );
    shop.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_fired_by_many_tasks_runs_once() {
    let shop = Arc::new(Shop::file().await);
    let id = shop.order().await;
    for (event, actor, key) in [
        (Event::Confirm, ActorKind::System, "confirm-race"),
        (Event::Pay, ActorKind::Customer, "pay-race"),
    ] {
        if event == Event::Pay {
            let attempt = shop
                .engine
                .authorize_payment(id)
                .await
                .expect("authorization runs");
            assert_eq!(attempt.outcome, "authorized");
        }
        let version = shop
            .store
            .order(id)
            .await
            .expect("readable")
            .expect("exists")
            .version;
        let command = Command::new(event, Shop::actor(actor)).key(key);
        let worker = shop.clone();
        let results = race(vec![command; TASKS], move |command| {
            let shop = worker.clone();
            async move { shop.engine.fire(id, command).await }
        })
        .await;
        let outcomes: Vec<Outcome> = results
            .into_iter()
            .map(|(_, result)| result.unwrap_or_else(|err| panic!("{event} with key {key}: {err}")))
            .collect();
        let fresh = outcomes.iter().filter(|o| !o.replayed).count();
        assert_eq!(
            fresh, 1,
            "{event}: exactly one ran, the rest replayed: {outcomes:#?}"
        );
        let first = Outcome {
            replayed: false,
            ..outcomes[0].clone()
        };
        assert!(
            outcomes.iter().all(|o| Outcome {
                replayed: false,
                ..o.clone()
            } == first),
            "{outcomes:#?}"
        );
        let history = shop.store.history(id).await.expect("readable");
        let keyed: Vec<_> = history
            .iter()
            .filter(|t| t.idempotency_key.as_deref() == Some(key))
            .collect();
        assert_eq!(keyed.len(), 1, "{event}: one audit row");
        assert_eq!(
            (keyed[0].seq, keyed[0].event, keyed[0].to),
            (first.seq, event, first.to)
        );
        let order = shop
            .store
            .order(id)
            .await
            .expect("readable")
            .expect("exists");
        assert_eq!(
            (order.state, order.version),
            (first.to, version + 1),
            "{event}"
        );
    }
    let captures = shop
        .payments
        .calls()
        .iter()
        .filter(|(call, _)| *call == Call::Capture)
        .count();
    assert_eq!(captures, 1, "one capture");
    let total = shop
        .store
        .order(id)
        .await
        .expect("readable")
        .expect("exists")
        .total_cents;
    assert_eq!(shop.payments.total_captured(), total);
    assert!(shop.store.attempts(id).await.expect("readable").is_empty());
    assert_eq!(
        shop.store.messages(id).await.expect("readable").len(),
        4,
        "one message per event: confirm, authorize, capture, pay"
    );
    shop.assert_verified().await;
}
