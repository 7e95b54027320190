//! `payment update|history`: the events of `payment.fsm` fired from the command line at
//! a paid order's payment, its refusals (exit 1, naming the rule) and usage errors
//! (exit 2), and the payment's audit trail.

use super::Shop;
use super::operations::fire;

/// A paid order of two mugs (30.00) and its payment's id.
fn paid(shop: &Shop) -> (String, String) {
    let id = shop.order("ann@example.com", &["MUG:2"]).to_string();
    fire(shop, &id, "confirm", "system", &[], "confirmed");
    shop.ok(&["order", "authorize", &id]);
    fire(shop, &id, "pay", "system", &[], "paid");
    let shown = shop.json(&["order", "show", &id]);
    let payment = shown["payments"][0]["id"].as_i64().expect("a payment id");
    (id, payment.to_string())
}

/// `payment update ID PAYMENT rest...`.
fn update<'a>(id: &'a str, payment: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["payment", "update", id, payment];
    args.extend_from_slice(rest);
    args
}

/// `refund --as support:sam --reason goodwill --amount CENTS`.
fn refund(cents: &str) -> [&str; 7] {
    [
        "refund",
        "--as",
        "support:sam",
        "--reason",
        "goodwill",
        "--amount",
        cents,
    ]
}

#[test]
fn support_refunds_a_payment_in_parts_and_never_more_than_was_captured() {
    let shop = Shop::stocked();
    let (id, payment) = paid(&shop);
    let first = shop.json(&update(&id, &payment, &refund("1000")));
    assert_eq!(first["transition"]["from"], "captured", "{first}");
    assert_eq!(first["transition"]["to"], "partially_refunded", "{first}");
    assert_eq!(first["payment"]["state"], "partially_refunded");
    assert_eq!(first["order"]["payment_status"], "partially_refunded");
    assert_eq!(first["refunds"][0]["amount_cents"], 1000);

    // More than the 20.00 left: refused by the rule that says so, nothing written.
    let refused = shop.fails(1, &update(&id, &payment, &refund("2001")));
    assert!(
        refused.contains("refund_covers_remaining_amount"),
        "{refused}"
    );
    let rest = shop.ok(&update(&id, &payment, &refund("2000")));
    assert!(
        rest.contains("partially_refunded -> refunded") && rest.contains("payment refunded"),
        "{rest}"
    );
    // Refunded is where the payment machine ends.
    let again = shop.fails(1, &update(&id, &payment, &refund("1")));
    assert!(
        again.contains("not a transition from `refunded`"),
        "{again}"
    );

    let trail = shop.json(&["payment", "history", &id, &payment]);
    let steps: Vec<(&str, &str, &str)> = trail
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| {
            (
                row["event"].as_str().expect("event"),
                row["to"].as_str().expect("to"),
                row["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("authorize", "authorized", "processor"),
            ("capture", "captured", "system"),
            ("refund", "partially_refunded", "support:sam"),
            ("refund", "refunded", "support:sam"),
        ]
    );
    assert_eq!(shop.ok(&["verify"]), "every invariant holds\n");
}

#[test]
fn bad_payment_arguments_are_usage_errors_and_missing_rows_are_named() {
    let shop = Shop::stocked();
    let (id, payment) = paid(&shop);
    let (id, payment) = (id.as_str(), payment.as_str());
    let event = shop.fails(2, &update(id, payment, &["teleport", "--as", "system"]));
    assert!(
        event.contains("unknown payment event `teleport`"),
        "{event}"
    );
    let zero = ["refund", "--as", "system", "--amount", "0"];
    let amount = shop.fails(2, &update(id, payment, &zero));
    assert!(amount.contains("positive number of cents"), "{amount}");
    let actor = shop.fails(2, &update(id, payment, &["refund", "--as", "customer:ann"]));
    assert!(actor.contains("unknown actor `customer`"), "{actor}");
    let whim = ["refund", "--as", "system", "--reason", "whim"];
    let reason = shop.fails(2, &update(id, payment, &whim));
    assert!(reason.starts_with("orderctl: --reason"), "{reason}");
    let without = shop.fails(1, &update(id, payment, &["refund", "--as", "support:sam"]));
    assert!(without.contains("requires a reason"), "{without}");
    let not_admin = ["refund", "--as", "admin:sam", "--reason", "goodwill"];
    let stranger = shop.fails(1, &update(id, payment, &not_admin));
    assert!(
        stranger.contains("does not hold the `admin` role"),
        "{stranger}"
    );
    let missing = shop.fails(1, &["payment", "history", id, "99"]);
    assert!(missing.contains("payment 99 is not on order"), "{missing}");
    // Nothing of it was written: the payment is still captured.
    let shown = shop.json(&["order", "show", id]);
    assert_eq!(shown["payments"][0]["state"], "captured");
}
