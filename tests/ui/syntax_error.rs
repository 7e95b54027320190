// A syntax error (FSM001) in the file: one compile error on the path, carrying the
// rendered diagnostic.

mod door {
    statemachine::machine!("fsm/syntax_error.fsm");
}

fn main() {}
