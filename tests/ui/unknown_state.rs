// A state the machine does not declare: rustc points at the use and suggests the
// declared spelling.

mod order {
    statemachine::machine!("fsm/order.fsm");
}

fn main() {
    let _ = order::State::Shiped;
}
