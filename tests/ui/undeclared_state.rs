// A transition to a state that is not declared (FSM003), with the suggestion.

mod order {
    statemachine::machine!("fsm/undeclared_state.fsm");
}

fn main() {}
