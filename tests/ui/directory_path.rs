// A path that names a folder, not a file.

mod order {
    statemachine::machine!("fsm");
}

fn main() {}
