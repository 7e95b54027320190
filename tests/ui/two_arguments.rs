// One machine per invocation: a second path is rejected.

mod order {
    statemachine::machine!("fsm/order.fsm", "fsm/undeclared_state.fsm");
}

fn main() {}
