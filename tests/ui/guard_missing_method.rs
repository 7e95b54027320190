// A clean machine whose `Guards` implementation lacks a guard: an ordinary Rust error
// naming the missing method, as the trait's documentation promises one method per guard.

mod order {
    statemachine::machine!("fsm/order.fsm");
}

struct Warehouse;

impl order::Guards for Warehouse {
    type Context = ();
    type Error = std::convert::Infallible;

    async fn in_stock(&self, _: &mut ()) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn main() {
    let _ = Warehouse;
}
