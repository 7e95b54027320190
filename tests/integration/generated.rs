//! The code `machine!` generates, used as a user would: the order machine's enums,
//! table, hooks and calendars, checked against the file they come from.

mod calendars;
mod expansion;
mod names;
mod table;
mod traits;

pub mod order {
    statemachine::machine!("../machines/order.fsm");
}

/// The order machine's validated model, the reference the generated code is checked
/// against.
fn order_model() -> statemachine_dsl::Model {
    let text = tests::read(&tests::workspace_root().join("machines/order.fsm"));
    statemachine_dsl::check(&text)
        .model
        .expect("order.fsm checks clean")
}
