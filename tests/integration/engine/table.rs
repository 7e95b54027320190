//! Every (state, event, actor) of order.fsm through the engine: the outcome is the one
//! the machine's table gives for the shop's data at that point.

use std::collections::HashSet;

use order_core::order::{ActorKind, Event, Guard, Machine, State};
use order_core::{Command, FireError};
use statemachine::{GuardCheck, Machine as _};

use super::harness;
use super::harness::Shop;

/// Which guards hold for an order that `Shop::order_in(state)` made, with the payment
/// authorized in `confirmed`: nothing shipped in `processing`, parcels in transit in
/// `shipped`, just delivered in `delivered`, no reversed refund, no return received.
fn facts(state: State) -> HashSet<Guard> {
    match state {
        State::Pending => [Guard::InventoryAvailable].into(),
        State::Confirmed => [Guard::PaymentAuthorized].into(),
        State::Processing => [Guard::NoItemsShipped].into(),
        State::Delivered => [Guard::WithinReturnWindow].into(),
        _ => HashSet::new(),
    }
}

struct Facts(HashSet<Guard>);

impl GuardCheck<Guard> for Facts {
    type Error = std::convert::Infallible;

    async fn check(&mut self, guard: Guard) -> Result<bool, Self::Error> {
        Ok(self.0.contains(&guard))
    }
}

/// What the machine says should happen, as comparable text.
async fn expected(state: State, event: Event, actor: ActorKind) -> String {
    let candidates = Machine::candidates(state, event);
    if candidates.is_empty() {
        return "invalid_transition".into();
    }
    let listed: Vec<_> = candidates
        .iter()
        .filter(|s| s.rule_for(actor).is_some())
        .collect();
    if listed.is_empty() {
        return "actor_not_allowed".into();
    }
    let mut first_refusal = None;
    for spec in listed {
        // The clock is in business hours, so windows are open.
        assert!(
            spec.calendar()
                .is_none_or(|c| c.is_open(harness::business_hours()))
        );
        let holds = match spec.guard {
            None => true,
            Some(guard) => {
                let decision = statemachine::evaluate(guard, &mut Facts(facts(state))).await;
                let decision = decision.unwrap_or_else(|never| match never {});
                if !decision.holds {
                    first_refusal.get_or_insert(format!("guard_failed:{}", decision.decided_by));
                }
                decision.holds
            }
        };
        if holds {
            return format!("{}", spec.to);
        }
    }
    first_refusal.expect("a refusal when no declaration passed")
}

fn actual(result: &Result<order_core::Outcome, FireError>) -> String {
    match result {
        Ok(outcome) => outcome.to.to_string(),
        Err(FireError::GuardFailed { guard, .. }) => format!("guard_failed:{guard}"),
        Err(err) => err.kind().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_event_and_actor_does_what_the_machine_says() {
    let shop = Shop::memory().await;
    let mut checked = 0;
    let mut moved = 0;
    for state in State::ALL {
        for event in Event::ALL {
            for actor in ActorKind::ALL {
                let id = shop.order_in(state).await;
                if state == State::Confirmed {
                    shop.engine
                        .authorize_payment(id)
                        .await
                        .expect("authorization runs");
                }
                let command = Command::new(event, Shop::actor(actor))
                    .reason(order_core::order::Reason::Other);
                let dry_run = shop.engine.check(id, &command).await;
                let result = shop.engine.fire(id, command).await;
                let want = expected(state, event, actor).await;
                assert_eq!(actual(&result), want, "{event} by {actor} in {state}");
                assert_eq!(
                    actual(&dry_run),
                    want,
                    "dry run of {event} by {actor} in {state}"
                );
                let now = shop.state(id).await;
                match &result {
                    Ok(outcome) => {
                        moved += 1;
                        assert_eq!(now, outcome.to);
                        let history = shop.store.history(id).await.expect("readable");
                        let last = history.last().expect("an audit row");
                        assert_eq!((last.event, last.from, last.to), (event, state, outcome.to));
                        assert_eq!(last.actor_kind, actor);
                        assert_eq!(last.is_override, outcome.is_override);
                    }
                    Err(err) => {
                        assert_eq!(now, state, "a refused {event} moved the order: {err}");
                        let attempts = shop.store.attempts(id).await.expect("readable");
                        assert!(
                            attempts.last().is_some_and(
                                |a| a.event == event && a.error_kind.ends_with(err.kind())
                            ),
                            "the refusal of {event} is recorded: {attempts:?}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9 * 11 * 5);
    assert!(moved > 20, "only {moved} transitions succeeded");
    shop.assert_verified().await;
}
