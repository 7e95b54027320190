// A file with one error (FSM004) whose states, events and guards are still used by the
// crate: the one located error is all that is reported, because the macro still emits
// every item the file declares.

use statemachine::Machine as _;

mod order {
    statemachine::machine!("fsm/broken_order.fsm");
}

struct Payments;

impl order::Guards for Payments {
    type Context = ();
    type Error = std::convert::Infallible;

    async fn payment_authorized(&self, _: &mut ()) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn main() {
    let specs = order::Machine::candidates(order::State::Pending, order::Event::Pay);
    assert!(specs.is_empty());
    let _ = (order::State::Shipped, order::Event::Ship, order::Guard::PaymentAuthorized);
    let _ = (order::ActorKind::Customer, order::DOT, order::MERMAID);
    let _ = Payments;
}
