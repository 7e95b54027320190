//! The payment simulator's tests: books, idempotency, injected faults and seeds.

use super::*;
use std::fmt::Debug;

fn rejected_with(result: Result<impl Debug, PaymentError>, needle: &str) -> bool {
    matches!(result, Err(PaymentError::Rejected(m)) if m.contains(needle))
}

async fn authorized(sim: &Simulator, key: &str, amount: i64) -> String {
    let auth = sim.authorize(key, amount).await.expect("authorized");
    auth.reference
}

#[tokio::test]
async fn repeated_keys_replay_the_first_answer_and_act_once() {
    let sim = Simulator::default();
    let first = sim.authorize("a1", 1000).await.expect("authorized");
    assert_eq!(first.reference, "pay_000001");
    assert_eq!(sim.authorize("a1", 1000).await, Ok(first.clone()));
    assert!(rejected_with(
        sim.authorize("a1", 999).await,
        "different request"
    ));
    let pay = first.reference;
    sim.capture("c1", &pay, 1000).await.expect("captured");
    sim.capture("c1", &pay, 1000).await.expect("replayed");
    assert_eq!(sim.total_captured(), 1000, "captured once");
    let refund = sim.refund("r1", &pay, 400).await.expect("refunded");
    assert_eq!(refund, "re_000001");
    assert_eq!(sim.refund("r1", &pay, 400).await, Ok(refund));
    assert_eq!(sim.total_refunded(), 400, "refunded once");
    assert_eq!(authorized(&sim, "a2", 5).await, "pay_000002");
    assert_eq!(sim.calls().len(), 8, "replays are calls too");
}

#[tokio::test]
async fn captures_stop_at_the_authorization_and_refunds_at_the_capture() {
    let sim = Simulator::default();
    let pay = authorized(&sim, "a1", 1000).await;
    assert!(rejected_with(sim.refund("r0", &pay, 1).await, "exceeds"));
    sim.capture("c1", &pay, 600).await.expect("captured");
    assert!(rejected_with(sim.capture("c2", &pay, 401).await, "exceeds"));
    sim.capture("c3", &pay, 400).await.expect("captured");
    assert!(rejected_with(
        sim.capture("c4", &pay, i64::MAX).await,
        "exceeds"
    ));
    sim.refund("r1", &pay, 700).await.expect("refunded");
    assert!(rejected_with(sim.refund("r2", &pay, 301).await, "exceeds"));
    sim.refund("r3", &pay, 300).await.expect("refunded");
    assert!(rejected_with(sim.refund("r4", &pay, 1).await, "exceeds"));
    assert!(rejected_with(sim.capture("c5", &pay, 0).await, "positive"));
    let balance = sim.balance(&pay).await.expect("known");
    assert_eq!(
        (balance.captured_cents, balance.refunded_cents),
        (1000, 1000)
    );
}

#[tokio::test]
async fn void_releases_an_authorization_but_not_a_capture() {
    let sim = Simulator::default();
    let voided = authorized(&sim, "a1", 1000).await;
    sim.void("v1", &voided).await.expect("voided");
    sim.void("v1", &voided).await.expect("replayed");
    assert!(rejected_with(
        sim.void("v2", &voided).await,
        "already voided"
    ));
    assert!(rejected_with(sim.capture("c1", &voided, 1).await, "voided"));
    assert!(sim.balance(&voided).await.expect("known").voided);
    let captured = authorized(&sim, "a2", 1000).await;
    sim.capture("c2", &captured, 100).await.expect("captured");
    assert!(rejected_with(sim.void("v3", &captured).await, "refund it"));
    for unknown in [
        sim.capture("c", "pay_9", 1).await,
        sim.void("v", "pay_9").await,
        sim.refund("r", "pay_9", 1).await.map(drop),
        sim.balance("pay_9").await.map(drop),
    ] {
        assert!(rejected_with(unknown, "unknown payment"));
    }
}

fn flaky(decline: f64, seed: u64) -> Simulator {
    Simulator::new(SimulatorConfig {
        decline_rate: decline,
        timeout_rate: 0.1,
        error_rate: 0.1,
        timeout_after_success_rate: 0.1,
        review_rate: 0.2,
        latency: Duration::ZERO,
        seed,
        keyed: false,
        ..SimulatorConfig::default()
    })
}

#[tokio::test]
async fn keyed_draws_do_not_depend_on_the_order_of_calls() {
    let keyed = |seed| {
        Simulator::new(
            SimulatorConfig {
                decline_rate: 0.5,
                keyed: true,
                ..SimulatorConfig::default()
            }
            .with_seed(seed),
        )
    };
    let keys: Vec<String> = (0..40).map(|i| format!("order-{i}-authorize-1")).collect();
    let (forward, backward) = (keyed(7), keyed(7));
    let mut ahead = Vec::new();
    for key in &keys {
        ahead.push((key.clone(), forward.authorize(key, 100).await));
    }
    let mut behind = Vec::new();
    for key in keys.iter().rev() {
        behind.push((key.clone(), backward.authorize(key, 100).await));
    }
    behind.reverse();
    assert_eq!(ahead, behind);
    let declined = ahead.iter().filter(|(_, r)| r.is_err()).count();
    assert!(
        (5..35).contains(&declined),
        "{declined} of 40 declined at rate 0.5"
    );
}

#[tokio::test]
async fn decline_rate_one_always_declines_with_a_code() {
    let sim = Simulator::new(SimulatorConfig {
        decline_rate: 1.0,
        ..SimulatorConfig::default()
    });
    for i in 0..50 {
        match sim.authorize(&format!("a{i}"), 100).await {
            Err(PaymentError::Declined { code }) => assert!(DECLINE_CODES.contains(&&*code)),
            other => panic!("expected a decline, got {other:?}"),
        }
    }
    assert_eq!(
        sim.authorize("a0", 100).await,
        sim.authorize("a0", 100).await
    );
}

async fn outcomes(sim: &Simulator) -> Vec<String> {
    let mut seen = Vec::new();
    for i in 0..40 {
        seen.push(match sim.authorize(&format!("a{i}"), 100).await {
            Ok(auth) => {
                let capture = sim.capture(&format!("c{i}"), &auth.reference, 100).await;
                format!("{auth:?} {capture:?}")
            }
            Err(err) => format!("{err:?}"),
        });
    }
    seen
}

#[tokio::test]
async fn the_same_seed_gives_the_same_outcomes() {
    let first = outcomes(&flaky(0.2, 42)).await;
    assert_eq!(first, outcomes(&flaky(0.2, 42)).await);
    assert_ne!(
        first,
        outcomes(&flaky(0.2, 43)).await,
        "another seed differs"
    );
    for kind in ["Declined", "Timeout", "Unavailable", "review: true"] {
        assert!(
            first.iter().any(|o| o.contains(kind)),
            "no {kind}: {first:?}"
        );
    }
}

#[tokio::test]
async fn a_timeout_after_success_is_resolved_by_a_retry() {
    let sim = Simulator::default();
    sim.succeed_then_timeout_next(Call::Authorize);
    assert_eq!(sim.authorize("a1", 1000).await, Err(PaymentError::Timeout));
    let pay = authorized(&sim, "a1", 1000).await;
    assert_eq!(pay, "pay_000001", "the first call authorized");
    sim.succeed_then_timeout_next(Call::Capture);
    let in_doubt = sim.capture("c1", &pay, 1000).await;
    assert_eq!(in_doubt, Err(PaymentError::Timeout));
    assert_eq!(sim.total_captured(), 1000, "the capture happened");
    sim.capture("c1", &pay, 1000)
        .await
        .expect("the retry sees the success");
    assert_eq!(sim.total_captured(), 1000, "and happened once");
}

#[tokio::test]
async fn fail_next_forces_the_next_calls_of_its_kind_only() {
    let sim = Simulator::default();
    let outage = PaymentError::Unavailable("down".to_owned());
    sim.fail_next(Call::Authorize, outage.clone());
    sim.fail_next(Call::Authorize, PaymentError::Timeout);
    sim.fail_next(Call::Capture, PaymentError::Timeout);
    assert_eq!(sim.authorize("a1", 100).await, Err(outage));
    assert_eq!(sim.authorize("a1", 100).await, Err(PaymentError::Timeout));
    let pay = authorized(&sim, "a1", 100).await;
    assert_eq!(
        sim.capture("c1", &pay, 100).await,
        Err(PaymentError::Timeout)
    );
    assert_eq!(
        sim.total_captured(),
        0,
        "a timeout before the effect did nothing"
    );
    sim.capture("c1", &pay, 100)
        .await
        .expect("the retry captures");
    let code = "card_declined".to_owned();
    sim.fail_next(Call::Authorize, PaymentError::Declined { code });
    let declined = sim.authorize("a2", 100).await;
    assert!(matches!(declined, Err(PaymentError::Declined { .. })));
    assert_eq!(
        sim.authorize("a2", 100).await,
        declined,
        "a decline is replayed"
    );
    let kinds: Vec<Call> = sim.calls().into_iter().map(|(call, _)| call).collect();
    assert_eq!(
        kinds[..5],
        [
            Call::Authorize,
            Call::Authorize,
            Call::Authorize,
            Call::Capture,
            Call::Capture
        ]
    );
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let latency = Duration::from_millis(20);
    let sim = Simulator::new(SimulatorConfig {
        latency,
        ..SimulatorConfig::default()
    });
    let start = std::time::Instant::now();
    sim.authorize("a1", 100).await.expect("authorized");
    assert!(start.elapsed() >= latency);
}
