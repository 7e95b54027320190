//! The generated enums' text forms: `Display`, `FromStr` and serde all use the `.fsm`
//! spelling, and reject text the file does not declare.

use statemachine::Name;

use super::order::{Action, ActorKind, Event, Guard, Notification, Operation, Reason, State};

/// Every variant survives `Display` → `FromStr` and serde JSON, spelled as in the file.
fn check<N: Name>(expected: &[&str]) {
    let spelled: Vec<&str> = N::ALL.iter().map(|n| n.as_str()).collect();
    assert_eq!(spelled, expected, "{}s in file order", N::KIND);
    for &name in N::ALL {
        let text = name.to_string();
        assert_eq!(text.parse::<N>(), Ok(name));
        let json = serde_json::to_string(&name).expect("names serialize");
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<N>(&json).ok(), Some(name));
    }
    let unknown = "no_such_name"
        .parse::<N>()
        .expect_err("unknown text is rejected");
    assert_eq!(unknown.kind, N::KIND);
    assert_eq!(unknown.expected, expected);
    assert!(serde_json::from_str::<N>("\"no_such_name\"").is_err());
    // The Rust spelling of a variant is not its text form.
    if let Some(first) = N::ALL.first() {
        assert!(format!("{first:?}").parse::<N>().is_err());
    }
}

#[test]
fn every_kind_of_name_round_trips_through_text_and_serde() {
    check::<State>(&[
        "pending",
        "confirmed",
        "paid",
        "processing",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
        "returned",
    ]);
    check::<Event>(&[
        "confirm",
        "pay",
        "cancel",
        "start_processing",
        "ship",
        "deliver",
        "refund",
        "return_to_sender",
        "return_delivered",
        "reopen",
        "reverse_refund",
    ]);
    check::<ActorKind>(&["customer", "support", "admin", "system", "carrier"]);
    check::<Reason>(&[
        "customer_request",
        "payment_failed",
        "payment_timeout",
        "out_of_stock",
        "fraud_suspected",
        "address_undeliverable",
        "damaged_in_transit",
        "lost_in_transit",
        "refused_by_recipient",
        "duplicate_order",
        "refund_reversed",
        "goodwill",
        "other",
    ]);
    check::<Guard>(&[
        "inventory_available",
        "payment_authorized",
        "fraud_hold",
        "payment_attempts_exhausted",
        "all_items_shipped",
        "all_shipments_delivered",
        "no_items_shipped",
        "return_received",
        "within_return_window",
        "refund_reversed_by_processor",
    ]);
    check::<Action>(&[
        "reserve_inventory",
        "capture_payment",
        "refund_payment",
        "release_inventory",
        "void_authorization",
        "restock_returned_items",
    ]);
    check::<Notification>(&[
        "order_confirmed",
        "payment_received",
        "processing_started",
        "order_shipped",
        "order_delivered",
        "return_received",
        "return_authorized",
        "order_reopened",
        "order_cancelled",
        "order_refunded",
    ]);
    check::<Operation>(&[
        "modify_items",
        "change_address",
        "split",
        "add_shipment",
        "add_note",
    ]);
}

#[test]
fn unknown_text_gets_a_message_listing_the_choices() {
    let err = "shiped".parse::<State>().expect_err("not a state");
    assert_eq!(
        err.to_string(),
        "unknown state `shiped`; expected one of: pending, confirmed, paid, processing, \
         shipped, delivered, cancelled, refunded, returned"
    );
    // Case matters: the file's spelling is the only one.
    assert!("Pending".parse::<State>().is_err());
    assert!(serde_json::from_str::<State>("\"Pending\"").is_err());
}

#[test]
fn names_order_as_declared() {
    assert!(State::Pending < State::Returned);
    let mut events = vec![Event::ReverseRefund, Event::Confirm, Event::Ship];
    events.sort();
    assert_eq!(events, [Event::Confirm, Event::Ship, Event::ReverseRefund]);
}
