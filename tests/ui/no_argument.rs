// The path is required.

mod order {
    statemachine::machine!();
}

fn main() {}
