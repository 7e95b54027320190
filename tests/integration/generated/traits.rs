//! The generated `Guards` and `Actions` traits, implemented as an application would.

use std::collections::HashSet;
use std::future::Future;

use statemachine::{Decision, Machine as _};

use super::order::{Action, Actions, Event, Guard, Guards, Machine, State};

/// What a transition sees: which guards hold, and a log of every call.
#[derive(Default)]
struct Ctx {
    holding: HashSet<Guard>,
    failing: Option<Action>,
    log: Vec<String>,
}

struct Shop;

macro_rules! guards {
    ($($name:ident => $variant:ident),* $(,)?) => {
        impl Guards for Shop {
            type Context = Ctx;
            type Error = String;
            $(
                async fn $name(&self, ctx: &mut Ctx) -> Result<bool, String> {
                    ctx.log.push(stringify!($name).to_owned());
                    Ok(ctx.holding.contains(&Guard::$variant))
                }
            )*
        }
    };
}

guards! {
    inventory_available => InventoryAvailable,
    payment_authorized => PaymentAuthorized,
    fraud_hold => FraudHold,
    payment_attempts_exhausted => PaymentAttemptsExhausted,
    all_items_shipped => AllItemsShipped,
    all_shipments_delivered => AllShipmentsDelivered,
    no_items_shipped => NoItemsShipped,
    return_received => ReturnReceived,
    within_return_window => WithinReturnWindow,
    refund_reversed_by_processor => RefundReversedByProcessor,
}

macro_rules! actions {
    ($($name:ident => $variant:ident),* $(,)?) => {
        impl Actions for Shop {
            type Context = Ctx;
            type Error = String;
            $(
                async fn $name(&self, ctx: &mut Ctx) -> Result<(), String> {
                    ctx.log.push(stringify!($name).to_owned());
                    if ctx.failing == Some(Action::$variant) {
                        return Err(format!("{} failed", stringify!($name)));
                    }
                    Ok(())
                }
            )*
        }
    };
}

actions! {
    reserve_inventory => ReserveInventory,
    capture_payment => CapturePayment,
    refund_payment => RefundPayment,
    release_inventory => ReleaseInventory,
    void_authorization => VoidAuthorization,
    restock_returned_items => RestockReturnedItems,
}

/// Runs a future that never waits (these guards and actions complete at once).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("nothing here waits"),
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn guards_evaluate_through_the_generated_dispatch_in_declared_order() {
    let pay = Machine::candidates(State::Confirmed, Event::Pay)[0]
        .guard
        .expect("pay has a guard");
    let mut ctx = Ctx {
        holding: [Guard::PaymentAuthorized, Guard::FraudHold].into(),
        ..Ctx::default()
    };
    // The futures are Send, so an engine can run them on a multi-threaded runtime.
    let decision = run(assert_send(Shop.evaluate(pay, &mut ctx)));
    assert_eq!(
        decision,
        Ok(Decision {
            holds: false,
            decided_by: Guard::FraudHold,
            value: true
        })
    );
    assert_eq!(ctx.log, ["payment_authorized", "fraud_hold"]);

    // Short-circuit: without an authorization the fraud check is never asked.
    let mut ctx = Ctx::default();
    let decision = run(Shop.evaluate(pay, &mut ctx));
    assert!(decision.is_ok_and(|d| !d.holds && d.decided_by == Guard::PaymentAuthorized));
    assert_eq!(ctx.log, ["payment_authorized"]);
}

#[test]
fn every_guard_and_action_dispatches_to_its_own_method() {
    let mut ctx = Ctx::default();
    for guard in Guard::ALL {
        ctx.holding = [guard].into();
        assert_eq!(run(Shop.check(guard, &mut ctx)), Ok(true), "{guard}");
    }
    let guards: Vec<String> = Guard::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(ctx.log, guards);

    let mut ctx = Ctx::default();
    for action in Action::ALL {
        assert_eq!(run(assert_send(Shop.run(action, &mut ctx))), Ok(()));
    }
    let actions: Vec<String> = Action::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(ctx.log, actions);

    let mut ctx = Ctx {
        failing: Some(Action::CapturePayment),
        ..Ctx::default()
    };
    assert_eq!(
        run(Shop.run(Action::CapturePayment, &mut ctx)),
        Err("capture_payment failed".to_owned())
    );
}
