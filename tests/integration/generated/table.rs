//! For every (state, event, actor) of order.fsm, the generated lookups say what the file
//! says: one `check(state, event, actor)` compares them with the validated model.

use sha2::Digest as _;
use statemachine::{Machine as _, TransitionSpec};
use statemachine_dsl::model::{self, Model};

use super::order::{ActorKind, Event, Machine, State};

/// What the file declares for (state, event): the declarations in file order, each as
/// comparable text.
fn declared(model: &Model, state: State, event: Event) -> Vec<String> {
    model
        .transitions
        .iter()
        .filter(|t| t.event == event.as_str() && t.from.iter().any(|f| f == state.as_str()))
        .map(describe_model)
        .collect()
}

fn describe_model(t: &model::Transition) -> String {
    let actors: Vec<String> = t
        .actors
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                r.actor,
                if r.needs_reason { "(reason)" } else { "" }
            )
        })
        .collect();
    let actions: Vec<String> = t
        .actions
        .iter()
        .map(|a| match &a.undo {
            Some(undo) => format!("{} undo {undo}", a.name),
            None => a.name.clone(),
        })
        .collect();
    format!(
        "{} -> {} by [{}] when [{}] do [{}] emit [{}] within [{}]",
        if t.is_override() { "override" } else { "on" },
        t.to,
        actors.join(", "),
        t.guard
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        actions.join(", "),
        t.emits.join(", "),
        t.window.clone().unwrap_or_default(),
    )
}

fn describe_spec(spec: &TransitionSpec<Machine>) -> String {
    let actors: Vec<String> = spec
        .actors
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                r.actor,
                if r.needs_reason { "(reason)" } else { "" }
            )
        })
        .collect();
    let actions: Vec<String> = spec
        .actions
        .iter()
        .map(|a| match a.undo {
            Some(undo) => format!("{} undo {undo}", a.action),
            None => a.action.to_string(),
        })
        .collect();
    let emits: Vec<String> = spec.emits.iter().map(ToString::to_string).collect();
    format!(
        "{} -> {} by [{}] when [{}] do [{}] emit [{}] within [{}]",
        if spec.is_override { "override" } else { "on" },
        spec.to,
        actors.join(", "),
        spec.guard.map(ToString::to_string).unwrap_or_default(),
        actions.join(", "),
        emits.join(", "),
        spec.calendar().map(|c| c.name).unwrap_or_default(),
    )
}

fn check(model: &Model, state: State, event: Event, actor: ActorKind) {
    let specs = Machine::candidates(state, event);
    let generated: Vec<String> = specs.iter().map(describe_spec).collect();
    assert_eq!(
        generated,
        declared(model, state, event),
        "candidates({state}, {event})"
    );
    for spec in specs {
        assert_eq!((spec.from, spec.event), (state, event));
    }
    let listed = specs.iter().any(|s| s.rule_for(actor).is_some());
    let available = Machine::available_events(state, actor).contains(&event);
    assert_eq!(
        available, listed,
        "available_events({state}, {actor}) and {event}"
    );
}

#[test]
fn every_state_event_and_actor_matches_the_file() {
    let model = super::order_model();
    let mut checked = 0;
    for state in State::ALL {
        for event in Event::ALL {
            for actor in ActorKind::ALL {
                check(&model, state, event, actor);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9 * 11 * 5);
}

#[test]
fn available_events_come_in_file_order_without_repeats() {
    for state in State::ALL {
        for actor in ActorKind::ALL {
            let events = Machine::available_events(state, actor);
            let mut sorted = events.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(events, sorted.as_slice(), "{state} {actor}");
        }
    }
}

#[test]
fn the_table_holds_each_declaration_once_per_source_state() {
    let model = super::order_model();
    let rows: usize = model.transitions.iter().map(|t| t.from.len()).sum();
    assert_eq!(Machine::TRANSITIONS.len(), rows);
}

#[test]
fn the_reference_machine_reads_as_written() {
    // Two declarations of `cancel` from `confirmed`, tried in file order: the system's
    // guarded one first, then the one for customers and staff.
    let cancel = Machine::candidates(State::Confirmed, Event::Cancel);
    assert_eq!(cancel.len(), 2);
    assert_eq!(cancel[0].actors.len(), 1);
    assert!(
        cancel[0]
            .rule_for(ActorKind::System)
            .is_some_and(|r| r.needs_reason)
    );
    assert_eq!(
        cancel[0].guard.map(ToString::to_string).as_deref(),
        Some("payment_attempts_exhausted")
    );
    assert!(
        cancel[1]
            .rule_for(ActorKind::Customer)
            .is_some_and(|r| !r.needs_reason)
    );
    assert!(cancel[1].rule_for(ActorKind::System).is_none());

    let pay = &Machine::candidates(State::Confirmed, Event::Pay)[0];
    assert_eq!(
        pay.actions[0].undo.map(|a| a.as_str()),
        Some("refund_payment")
    );
    assert_eq!(pay.line, 36);

    let reopen = &Machine::candidates(State::Cancelled, Event::Reopen)[0];
    assert!(reopen.is_override);
    assert_eq!(reopen.to, State::Pending);

    assert!(Machine::candidates(State::Delivered, Event::Cancel).is_empty());
    assert_eq!(
        Machine::available_events(State::Delivered, ActorKind::Customer),
        &[]
    );
    assert_eq!(
        Machine::available_events(State::Shipped, ActorKind::Carrier),
        &[Event::Deliver, Event::ReturnToSender]
    );

    let start = &Machine::candidates(State::Paid, Event::StartProcessing)[0];
    assert_eq!(start.calendar().map(|c| c.name), Some("business_hours"));
}

#[test]
fn states_know_their_role_and_operations() {
    assert_eq!(Machine::INITIAL, State::Pending);
    let initial: Vec<State> = State::ALL.into_iter().filter(|s| s.is_initial()).collect();
    assert_eq!(initial, [State::Pending]);
    let terminal: Vec<State> = State::ALL.into_iter().filter(|s| s.is_terminal()).collect();
    assert_eq!(
        terminal,
        [State::Delivered, State::Cancelled, State::Refunded]
    );

    let model = super::order_model();
    for state in State::ALL {
        for operation in super::order::Operation::ALL {
            let declared = model.operations.iter().any(|o| {
                o.name == operation.as_str() && o.states.iter().any(|s| s == state.as_str())
            });
            assert_eq!(state.allows(operation), declared, "{operation} in {state}");
        }
    }
}

#[test]
fn hooks_merge_per_state_and_actors_know_their_class() {
    use super::order::Notification;
    use statemachine::ActorClass;

    assert_eq!(
        Machine::on_enter(State::Cancelled).emits,
        &[Notification::OrderCancelled]
    );
    assert_eq!(
        Machine::on_enter(State::Refunded).emits,
        &[Notification::OrderRefunded]
    );
    assert!(Machine::on_enter(State::Paid).is_empty());
    assert!(
        State::ALL
            .into_iter()
            .all(|s| Machine::on_exit(s).is_empty())
    );

    assert_eq!(Machine::actor_class(ActorKind::Customer), ActorClass::Owner);
    assert_eq!(Machine::actor_class(ActorKind::Support), ActorClass::Staff);
    assert_eq!(
        Machine::actor_class(ActorKind::Carrier),
        ActorClass::Service
    );
}

#[test]
fn the_machine_knows_its_name_source_and_graphs() {
    assert_eq!(Machine::NAME, "Order");
    let text = tests::read(&tests::workspace_root().join("machines/order.fsm"));
    let digest: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(Machine::SOURCE_HASH, digest);
    let model = super::order_model();
    assert_eq!(super::order::DOT, statemachine_dsl::to_dot(&model));
    assert_eq!(super::order::MERMAID, statemachine_dsl::to_mermaid(&model));
    assert_eq!(
        super::order::MERMAID,
        tests::read(&tests::workspace_root().join("machines/order.mmd"))
    );
}
