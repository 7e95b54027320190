// The argument must be a string literal, not an identifier.

mod order {
    statemachine::machine!(order);
}

fn main() {}
