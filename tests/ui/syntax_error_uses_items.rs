// A file with a syntax error, used by the crate: the macro keeps the names of the items
// that did parse (`shut`, `close`), so the FSM001 error is the only one.

mod door {
    statemachine::machine!("fsm/syntax_error.fsm");
}

fn main() {
    let _ = door::State::Shut;
    let _ = door::Event::Close;
}
