// The argument must be a string literal, not a number.

mod order {
    statemachine::machine!(42);
}

fn main() {}
