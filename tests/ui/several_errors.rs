// A file with several semantic errors: all of them, in file order, in the one message.

mod order {
    statemachine::machine!("fsm/several_errors.fsm");
}

fn main() {}
