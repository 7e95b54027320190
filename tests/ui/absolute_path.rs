// An absolute path would build on this machine only: rejected before any file is read.

mod order {
    statemachine::machine!("/srv/machines/order.fsm");
}

fn main() {}
