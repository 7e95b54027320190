// A path that names no file: the message names the path as written.

mod order {
    statemachine::machine!("fsm/no_such_machine.fsm");
}

fn main() {}
