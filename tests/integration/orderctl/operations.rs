//! The operations that take an order past `confirmed`, from the command line only:
//! authorize, modify, address, note, split, shipments, received returns; and the
//! refused attempts in `order show` and `history --attempts`.
//!
//! `start_processing` is only allowed within the machine's `business_hours` (Berlin),
//! so the lifecycle runs with `ORDERCTL_NOW` stopping the engine's clock on a
//! Wednesday morning, and the window itself is tested on a Sunday.

use serde_json::{Value, json};

use super::{Shop, run_at, text};

/// Wednesday 4 March 2026, 11:00 in Berlin: within business hours.
pub(super) const OPEN: &str = "2026-03-04T10:00:00Z";
/// Sunday 8 March 2026, 11:00 in Berlin: closed all day.
const SUNDAY: &str = "2026-03-08T10:00:00Z";
/// Monday 9 March 2026, 08:00 in Berlin, when the shop opens again.
const MONDAY: &str = "2026-03-09T07:00:00Z";

/// The id of the order's line of `sku`, from `order show --json`.
pub(super) fn line(shop: &Shop, order: &str, sku: &str) -> String {
    let shown = shop.json(&["order", "show", order]);
    let items = shown["items"].as_array().expect("items");
    let item = items.iter().find(|i| i["sku"] == sku).expect("the line");
    item["id"].as_i64().expect("a line id").to_string()
}

/// `fire ORDER EVENT --as ACTOR [rest]` must move the order to `to`.
pub(super) fn fire(
    shop: &Shop,
    order: &str,
    event: &str,
    actor: &str,
    rest: &[&str],
    to: &str,
) -> Value {
    let args = [&["fire", order, event, "--as", actor][..], rest].concat();
    let outcome = shop.json(&args);
    assert_eq!(outcome["to"], to, "{args:?}: {outcome}");
    outcome
}

/// A stocked shop at `now` with one order of 2 MUG and 1 TEE (50.00 EUR), confirmed,
/// authorized and paid; its id.
pub(super) fn paid(now: &str) -> (Shop, String) {
    let shop = Shop::stocked().at(now);
    let id = shop
        .order("ann@example.com", &["MUG:2", "TEE:1"])
        .to_string();
    fire(&shop, &id, "confirm", "system", &[], "confirmed");
    shop.json(&["order", "authorize", &id]);
    fire(&shop, &id, "pay", "system", &[], "paid");
    (shop, id)
}

#[test]
fn an_order_goes_from_confirmed_to_refunded_after_a_return() {
    let shop = Shop::stocked().at(OPEN);
    let id = shop
        .order("ann@example.com", &["MUG:2", "TEE:1"])
        .to_string();
    fire(&shop, &id, "confirm", "system", &[], "confirmed");

    let authorized = shop.json(&["order", "authorize", &id]);
    assert_eq!(authorized["order"], id.parse::<i64>().expect("an id"));
    assert_eq!(authorized["outcome"], "authorized");
    assert_eq!(authorized["payment_status"], "authorized");
    let payment = &authorized["payment"];
    assert_eq!(payment["attempt_no"], 1);
    assert_eq!(payment["state"], "authorized");
    assert_eq!(payment["amount_cents"], 5000);
    // The shop's first authorization at the processor the journal keeps.
    assert_eq!(payment["processor_ref"], "pay_000001");

    fire(&shop, &id, "pay", "system", &[], "paid");
    fire(&shop, &id, "start_processing", "system", &[], "processing");
    let (mug, tee) = (line(&shop, &id, "MUG"), line(&shop, &id, "TEE"));

    // One mug first: the order is partly shipped and `ship` is refused.
    let first = shop.json(&[
        "shipment",
        "add",
        &id,
        "--line",
        &format!("{mug}:1"),
        "--carrier",
        "DHL",
        "--tracking",
        "T-1",
    ]);
    assert_eq!(first["order"]["fulfillment_status"], "partially_shipped");
    let parcel = &first["shipment"];
    assert_eq!(parcel["state"], "label_created");
    assert_eq!(parcel["carrier"], "DHL");
    assert_eq!(parcel["tracking_number"], "T-1");
    assert_eq!(
        parcel["lines"],
        json!([{"line": mug.parse::<i64>().expect("id"), "quantity": 1}])
    );
    assert_eq!(parcel["delivered_at"], Value::Null);
    assert!(
        shop.fails(1, &["fire", &id, "ship", "--as", "system"])
            .starts_with("orderctl: guard `all_items_shipped` was false"),
    );

    // The rest, then nothing is left.
    let rest = shop.json(&["shipment", "add", &id, "--all", "--carrier", "UPS"]);
    assert_eq!(rest["order"]["fulfillment_status"], "shipped");
    assert_eq!(rest["shipment"]["tracking_number"], Value::Null);
    let rest_lines: Vec<(String, i64)> = rest["shipment"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| (l["line"].to_string(), l["quantity"].as_i64().expect("qty")))
        .collect();
    assert_eq!(rest_lines, [(mug.clone(), 1), (tee.clone(), 1)]);
    assert_eq!(
        shop.fails(1, &["shipment", "add", &id, "--all", "--carrier", "UPS"]),
        format!("orderctl: order {id} has no units left to ship")
    );
    fire(&shop, &id, "ship", "system", &[], "shipped");
    assert_eq!(
        shop.fails(1, &["order", "address", &id, "Elsewhere 2"]),
        "orderctl: `change_address` is not allowed in `shipped`; it is allowed in: pending, confirmed, paid"
    );

    // The carrier delivers both parcels, and the order follows.
    let parcels = [
        first["shipment"]["id"].to_string(),
        rest["shipment"]["id"].to_string(),
    ];
    let carry = |parcel: &str, event: &str| {
        shop.json(&["shipment", "update", &id, parcel, event, "--as", "carrier"])
    };
    for event in ["pick_up", "dispatch"] {
        carry(&parcels[0], event);
    }
    let delivered = carry(&parcels[0], "deliver");
    assert_eq!(delivered["shipment"]["state"], "delivered");
    assert_eq!(
        delivered["shipment"]["delivered_at"],
        "2026-03-04T10:00:00Z"
    );
    assert_eq!(delivered["order"]["fulfillment_status"], "shipped");
    assert_eq!(delivered["order_transition"], Value::Null);
    for event in ["pick_up", "dispatch"] {
        carry(&parcels[1], event);
    }
    let delivered = carry(&parcels[1], "deliver");
    assert_eq!(delivered["order"]["fulfillment_status"], "delivered");
    assert_eq!(delivered["order"]["state"], "delivered");
    assert_eq!(delivered["order_transition"]["event"], "deliver");
    assert_eq!(delivered["order_transition"]["to"], "delivered");

    // A return: authorized by support, received by the warehouse, refunded.
    let reason = ["--reason", "damaged_in_transit"];
    let back = fire(
        &shop,
        &id,
        "return_delivered",
        "support:sam",
        &reason,
        "returned",
    );
    assert_eq!(back["is_override"], true);
    let received = shop.json(&["order", "return-received", &id]);
    assert_eq!(received["fulfillment_status"], "returned");
    for item in received["items"].as_array().expect("items") {
        assert_eq!(item["qty_returned"], item["qty_shipped"], "{item}");
        assert_eq!(item["qty_returned"], item["quantity"], "{item}");
    }
    fire(&shop, &id, "refund", "system", &[], "refunded");
    assert_eq!(shop.ok(&["verify"]), "every invariant holds\n");

    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "refunded");
    assert_eq!(shown["payment_status"], "refunded");
    assert_eq!(shown["fulfillment_status"], "returned");
    assert_eq!(shown["payments"][0]["state"], "refunded");
    assert_eq!(shown["refunds"][0]["amount_cents"], 5000);
    assert_eq!(shown["refunds"][0]["state"], "succeeded");
    let states: Vec<&Value> = shown["shipments"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| &s["state"])
        .collect();
    // The parcels' own journeys ended at the door; the return is the order's.
    assert_eq!(states, ["delivered", "delivered"]);
    let attempts = shown["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["event"], "ship");
    assert_eq!(attempts[0]["actor"], "system");
    assert_eq!(attempts[0]["error_kind"], "guards:guard_failed");
    assert_eq!(attempts[0]["at"], "2026-03-04T10:00:00Z");

    let history = shop.json(&["history", &id, "--attempts"]);
    let events: Vec<&str> = history["trail"]
        .as_array()
        .expect("the trail")
        .iter()
        .map(|e| e["event"].as_str().expect("an event"))
        .collect();
    assert_eq!(
        events,
        [
            "confirm",
            "pay",
            "start_processing",
            "ship",
            "deliver",
            "return_delivered",
            "refund"
        ]
    );
    assert_eq!(history["attempts"], json!(attempts));
    // Without --attempts the JSON is the trail's array, as before.
    assert_eq!(shop.json(&["history", &id]), history["trail"]);

    // Everything came back on the shelf and nothing is held.
    let products = shop.json(&["product", "list"]);
    let stock: Vec<(i64, i64)> = products
        .as_array()
        .expect("products")
        .iter()
        .map(|p| {
            (
                p["on_hand"].as_i64().expect("n"),
                p["reserved"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(stock, [(10, 0), (1, 0)]);
}

#[test]
fn start_processing_waits_for_business_hours() {
    let (shop, id) = paid(SUNDAY);
    assert_eq!(
        shop.fails(1, &["fire", &id, "start_processing", "--as", "system"]),
        "orderctl: `start_processing` is only allowed within `business_hours`; \
         it next opens at 2026-03-09 07:00 UTC"
    );
    let history = shop.json(&["history", &id, "--attempts"]);
    assert_eq!(
        history["attempts"][0]["error_kind"],
        "window:outside_window"
    );
    assert_eq!(history["attempts"][0]["at"], "2026-03-08T10:00:00Z");
    let shop = shop.at(MONDAY);
    fire(&shop, &id, "start_processing", "system", &[], "processing");
}

#[test]
fn without_orderctl_now_the_engine_reads_the_system_clock() {
    let shop = Shop::stocked();
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(5);
    let order = shop.json(&["order", "create", "--customer", "a@b", "--item", "MUG:1"]);
    let created = order["created_at"].as_str().expect("a time");
    let created = chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");
    assert!(created >= before, "{created} is not now");

    // A clock that is not a time is a usage error, before the database is opened.
    let empty = Shop::empty();
    let out = run_at(
        empty.dir.path(),
        Some("yesterday"),
        &["--db", &empty.url, "list"],
    );
    assert_eq!(
        super::one_line_error(&out, 2, &["ORDERCTL_NOW"]),
        "orderctl: ORDERCTL_NOW: `yesterday` is not an RFC 3339 time, e.g. 2026-03-04T10:00:00Z"
    );
    assert!(!empty.path().exists());
}

#[test]
fn modify_address_note_and_split_before_shipping() {
    let shop = Shop::stocked().at(OPEN);
    let id = shop.order("ann@example.com", &["MUG:1"]).to_string();

    let modified = shop.json(&["order", "modify", &id, "--item", "MUG:3"]);
    assert_eq!(modified["total_cents"], 4500);
    assert_eq!(modified["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(modified["items"][0]["quantity"], 3);
    fire(&shop, &id, "confirm", "system", &[], "confirmed");
    // In `confirmed` the reservations follow the new lines.
    let modified = shop.json(&["order", "modify", &id, "--item", "MUG:2", "--item", "TEE:1"]);
    assert_eq!(modified["total_cents"], 5000);
    let reserved: Vec<Value> = shop
        .json(&["product", "list"])
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["reserved"].clone())
        .collect();
    assert_eq!(reserved, [json!(2), json!(1)]);
    assert_eq!(
        shop.fails(1, &["order", "modify", &id, "--item", "TEE:2"]),
        "orderctl: not enough stock of `TEE`: 2 requested, 1 available"
    );
    assert_eq!(
        shop.fails(1, &["order", "modify", &id, "--item", "NOPE:1"]),
        "orderctl: unknown product `NOPE`"
    );

    let addressed = shop.json(&["order", "address", &id, "  Main St 1, Berlin "]);
    assert_eq!(addressed["shipping_address"], "Main St 1, Berlin");
    assert_eq!(addressed["state"], "confirmed");
    let noted = shop.json(&["order", "note", &id, "gift wrap", "--as", "sam"]);
    assert_eq!(
        noted,
        json!({"order": id.parse::<i64>().expect("id"), "author": "sam", "note": "gift wrap"})
    );

    shop.json(&["order", "authorize", &id]);
    fire(&shop, &id, "pay", "system", &[], "paid");
    assert_eq!(
        shop.fails(1, &["order", "modify", &id, "--item", "MUG:1"]),
        "orderctl: `modify_items` is not allowed in `paid`; it is allowed in: pending, confirmed"
    );

    // The tee moves to a child order, with its share of the capture.
    let tee = line(&shop, &id, "TEE");
    let child = shop.json(&["order", "split", &id, "--line", &tee, "--line", &tee]);
    assert_eq!(child["parent"], id.parse::<i64>().expect("id"));
    assert_eq!(child["state"], "paid");
    assert_eq!(child["total_cents"], 2000);
    assert_eq!(child["payment_status"], "captured");
    assert_eq!(child["items"][0]["sku"], "TEE");
    assert_eq!(child["items"][0]["id"].to_string(), tee);
    let parent = shop.json(&["order", "show", &id]);
    assert_eq!(parent["total_cents"], 3000);
    assert_eq!(parent["payments"][0]["amount_cents"], 3000);
    let child_id = child["id"].to_string();
    let shown = shop.json(&["order", "show", &child_id]);
    assert_eq!(shown["payments"][0]["amount_cents"], 2000);
    assert_eq!(shown["payments"][0]["processor_ref"], "pay_000001");
    // Splitting the last line would leave the parent empty.
    let mug = line(&shop, &id, "MUG");
    assert_eq!(
        shop.fails(1, &["order", "split", &id, "--line", &mug]),
        "orderctl: a split moves some, not all, of the order's own lines"
    );
    assert_eq!(
        shop.fails(1, &["order", "split", &id, "--line", &tee]),
        "orderctl: a split moves some, not all, of the order's own lines"
    );
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

#[test]
fn shipments_refuse_what_the_order_does_not_hold() {
    let (shop, id) = paid(OPEN);
    let (mug, tee) = (line(&shop, &id, "MUG"), line(&shop, &id, "TEE"));
    let ship = |lines: &[&str]| -> Vec<String> {
        let mut args = vec!["shipment".to_owned(), "add".to_owned(), id.clone()];
        for l in lines {
            args.extend(["--line".to_owned(), (*l).to_owned()]);
        }
        args.extend(["--carrier".to_owned(), "DHL".to_owned()]);
        args
    };
    let refused = |code: i32, lines: &[&str]| -> String {
        let args = ship(lines);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        shop.fails(code, &args)
    };
    let one_mug = format!("{mug}:1");
    assert_eq!(
        refused(1, &[&one_mug]),
        "orderctl: `add_shipment` is not allowed in `paid`; it is allowed in: processing"
    );
    fire(&shop, &id, "start_processing", "system", &[], "processing");

    let too_many = format!("{mug}:3");
    let expected =
        format!("orderctl: line {mug} (MUG) of order {id} has 2 unit(s) left to ship, not 3");
    assert_eq!(refused(1, &[&too_many]), expected);
    // A line given twice is one line of the sum.
    let two_mugs = format!("{mug}:2");
    assert_eq!(refused(1, &[&one_mug, &two_mugs]), expected);
    assert_eq!(
        refused(1, &["999:1"]),
        format!("orderctl: line 999 is not on order {id}")
    );
    let other = shop.order("bob@example.com", &["MUG:1"]);
    let foreign = format!("{}:1", line(&shop, &other.to_string(), "MUG"));
    assert!(refused(1, &[&foreign]).ends_with(&format!("is not on order {id}")));

    for (bad, message) in [
        (
            mug.as_str(),
            format!("orderctl: --line `{mug}` is not LINE_ID:QTY (e.g. `{mug}:1`)"),
        ),
        (
            "x:1",
            "orderctl: --line: a line id is a positive whole number, got `x`".to_owned(),
        ),
        (
            "0:1",
            "orderctl: --line: a line id is a positive whole number, got `0`".to_owned(),
        ),
        (
            &*format!("{mug}:0"),
            format!(
                "orderctl: --line `{mug}:0`: the quantity after `:` must be a positive whole number"
            ),
        ),
    ] {
        assert_eq!(refused(2, &[bad]), message);
    }

    // Nothing was shipped by the refusals; one parcel, then its label is cancelled.
    let parcel = shop.json(&[
        "shipment",
        "add",
        &id,
        "--line",
        &one_mug,
        "--line",
        &format!("{tee}:1"),
        "--carrier",
        "DHL",
    ]);
    assert_eq!(parcel["order"]["fulfillment_status"], "partially_shipped");
    let parcel_id = parcel["shipment"]["id"].to_string();
    let cancelled = shop.json(&[
        "shipment",
        "update",
        &id,
        &parcel_id,
        "cancel",
        "--as",
        "support:sam",
        "--reason",
        "customer_request",
    ]);
    assert_eq!(cancelled["shipment"]["state"], "cancelled");
    // The parcel's units are back on the shelf, held for the order.
    assert_eq!(cancelled["order"]["fulfillment_status"], "unfulfilled");
    assert_eq!(
        shop.fails(
            2,
            &[
                "shipment", "update", &id, &parcel_id, "gone", "--as", "carrier"
            ]
        ),
        "orderctl: unknown shipment event `gone`; expected one of: pick_up, cancel, scan, \
         dispatch, deliver, attempt_failed, return_to_sender, report_lost, recover, \
         reverse_delivery"
    );
    assert_eq!(
        shop.fails(
            2,
            &[
                "shipment", "update", &id, "first", "scan", "--as", "carrier"
            ]
        ),
        "orderctl: a shipment id is a positive whole number, got `first`"
    );
    assert_eq!(
        shop.fails(
            1,
            &[
                "shipment", "update", &id, "99", "deliver", "--as", "carrier"
            ]
        ),
        format!("orderctl: shipment 99 is not on order {id}")
    );
    assert_eq!(
        shop.fails(1, &["order", "return-received", &id]),
        format!("orderctl: order {id} is `processing`; returns are received in `returned`")
    );
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

#[test]
fn every_new_command_says_so_when_the_order_is_missing_or_an_argument_is_bad() {
    let shop = Shop::stocked();
    for args in [
        &["order", "show", "42"][..],
        &["order", "authorize", "42"],
        &["order", "modify", "42", "--item", "MUG:1"],
        &["order", "address", "42", "Main St 1"],
        &["order", "note", "42", "hello", "--as", "sam"],
        &["order", "split", "42", "--line", "1"],
        &["order", "return-received", "42"],
        &["shipment", "add", "42", "--all", "--carrier", "DHL"],
        &["shipment", "add", "42", "--line", "1:1", "--carrier", "DHL"],
        &[
            "shipment", "update", "42", "1", "deliver", "--as", "carrier",
        ],
        &["shipment", "history", "42", "1"],
        &["history", "42", "--attempts"],
    ] {
        assert_eq!(
            shop.fails(1, args),
            "orderctl: order 42 does not exist",
            "{args:?}"
        );
    }

    let empty = Shop::empty();
    for (args, expected) in [
        (
            &["order", "show", "x"][..],
            "orderctl: an order id is a positive whole number, got `x`",
        ),
        (
            &["order", "address", "1", " "],
            "orderctl: the address cannot be empty",
        ),
        (
            &["order", "note", "1", "", "--as", "sam"],
            "orderctl: the note cannot be empty",
        ),
        (
            &["order", "note", "1", "hi", "--as", " "],
            "orderctl: --as cannot be empty",
        ),
        (
            &["order", "split", "1", "--line", "2:1"],
            "orderctl: --line: a line id is a positive whole number, got `2:1`",
        ),
        (
            &["order", "modify", "1", "--item", "MUG"],
            "orderctl: --item `MUG` is not SKU:QTY (e.g. `MUG:1`)",
        ),
        (
            &["shipment", "add", "1", "--all", "--carrier", " "],
            "orderctl: --carrier cannot be empty",
        ),
        (
            &[
                "shipment",
                "add",
                "1",
                "--all",
                "--carrier",
                "DHL",
                "--tracking",
                "",
            ],
            "orderctl: --tracking cannot be empty",
        ),
    ] {
        assert_eq!(empty.fails(2, args), expected, "{args:?}");
    }
    // What clap refuses: its own message, exit 2.
    for args in [
        &["shipment", "add", "1", "--carrier", "DHL"][..],
        &[
            "shipment",
            "add",
            "1",
            "--all",
            "--line",
            "1:1",
            "--carrier",
            "DHL",
        ],
        &["shipment", "add", "1", "--all"],
        &["order", "note", "1", "hello"],
        &["order", "split", "1"],
        &["order", "modify", "1"],
    ] {
        let out = empty.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).starts_with("error: "), "{args:?}");
    }
    assert!(!empty.path().exists(), "a usage error created the database");
}
