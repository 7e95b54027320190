//! Parcels through `shipment.fsm` from the command line: `shipment update EVENT --as
//! ACTOR` and its refusals, `shipment history`, the carrier's and the payment
//! processor's webhooks through `inbox receive|process|list`, and what `simulate`
//! reports of the carrier and of the processor.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::operations::{OPEN, fire, paid};
use super::{Shop, one_line_error, text};

/// Sunday 8 March 2026, 11:00 in Berlin: the carrier does not pick up.
const SUNDAY: &str = "2026-03-08T10:00:00Z";

/// A stocked shop at `OPEN` with one order of 2 MUG and 1 TEE in processing, its units
/// all in one parcel tracked as `T-1`: the order's id and the parcel's.
fn packed() -> (Shop, String, String) {
    let (shop, id) = paid(OPEN);
    fire(&shop, &id, "start_processing", "system", &[], "processing");
    let added = shop.json(&[
        "shipment",
        "add",
        &id,
        "--all",
        "--carrier",
        "DHL",
        "--tracking",
        "T-1",
    ]);
    assert_eq!(added["shipment"]["state"], "label_created");
    let parcel = added["shipment"]["id"].to_string();
    (shop, id, parcel)
}

/// `shipment update ORDER PARCEL EVENT --as ACTOR [rest]`.
fn update<'a>(id: &'a str, parcel: &'a str, event: &'a str, actor: &'a str) -> Vec<&'a str> {
    vec!["shipment", "update", id, parcel, event, "--as", actor]
}

/// `args` followed by `rest`.
fn with<'a>(args: Vec<&'a str>, rest: &[&'a str]) -> Vec<&'a str> {
    [args.as_slice(), rest].concat()
}

/// A carrier webhook of parcel `T-1` as JSON.
fn webhook(external_id: &str, kind: &str, at: &str, sequence: u32) -> Value {
    json!({
        "external_id": external_id,
        "tracking_number": "T-1",
        "kind": kind,
        "occurred_at": at,
        "sequence": sequence,
    })
}

/// Writes `value` to `name` in the shop's folder (where orderctl runs); the name.
fn write<'a>(shop: &Shop, name: &'a str, value: &Value) -> &'a str {
    let text = serde_json::to_string_pretty(value).expect("JSON");
    std::fs::write(shop.dir.path().join(name), text).expect("written");
    name
}

#[test]
fn shipment_update_moves_the_parcel_and_the_order_follows() {
    let (shop, id, parcel) = packed();
    let picked = shop.json(&update(&id, &parcel, "pick_up", "carrier"));
    assert_eq!(
        picked["transition"],
        json!({
            "event": "pick_up", "from": "label_created", "to": "in_transit", "seq": 1,
            "actor": "carrier", "reason": null,
        })
    );
    assert_eq!(picked["shipment"]["state"], "in_transit");
    // Every unit is with the carrier: the order ships by itself.
    assert_eq!(picked["order"]["state"], "shipped");
    assert_eq!(picked["order_transition"]["event"], "ship");
    assert_eq!(picked["order_transition"]["from"], "processing");
    assert_eq!(picked["order_transition"]["seq"], 4);

    assert_eq!(
        shop.ok(&update(&id, &parcel, "dispatch", "carrier")),
        format!(
            "order {id}: shipment {parcel} in_transit -> out_for_delivery \
             (dispatch by carrier, seq 2); fulfillment shipped\n"
        )
    );
    let failed = shop.json(&with(
        update(&id, &parcel, "attempt_failed", "carrier"),
        &["--reason", "other"],
    ));
    assert_eq!(failed["transition"]["reason"], "other");
    assert_eq!(failed["shipment"]["state"], "failed_attempt");
    shop.ok(&update(&id, &parcel, "dispatch", "carrier"));
    assert_eq!(
        shop.ok(&update(&id, &parcel, "deliver", "carrier")),
        format!(
            "order {id}: shipment {parcel} out_for_delivery -> delivered \
             (deliver by carrier, seq 5); fulfillment delivered\n\
             order {id} follows its parcels: shipped -> delivered (deliver, seq 5)\n"
        )
    );

    // An admin reverses the delivery only with a dispute on record, as an override.
    let reverse = with(
        update(&id, &parcel, "reverse_delivery", "admin:ada"),
        &["--reason", "other"],
    );
    assert_eq!(
        shop.fails(1, &reverse),
        "orderctl: guard `delivery_disputed` was false in `when delivery_disputed` of \
         `reverse_delivery`"
    );
    let reversed = shop.json(&with(reverse, &["--dispute", "CASE-7"]));
    assert_eq!(reversed["shipment"]["state"], "lost");
    assert_eq!(reversed["order"]["state"], "delivered");
    let trail = shop.json(&["shipment", "history", &id, &parcel]);
    let last = &trail[5];
    assert_eq!(last["event"], "reverse_delivery");
    assert_eq!(last["override"], true);
    assert_eq!(last["actor"], "admin:ada");
    assert_eq!(last["metadata"], json!({"dispute": "CASE-7"}));
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

#[test]
fn shipment_update_says_which_rule_refused_and_changes_nothing() {
    let (shop, id, parcel) = packed();
    for (args, expected) in [
        (
            update(&id, &parcel, "dispatch", "carrier"),
            "`dispatch` is not a transition from `label_created`; carrier may fire: pick_up",
        ),
        (
            update(&id, &parcel, "cancel", "support:sam"),
            "`cancel` by `support` requires a reason",
        ),
        (
            update(&id, &parcel, "pick_up", "support:sam"),
            "`support` may not fire `pick_up` from `label_created`; allowed: carrier",
        ),
        (
            with(
                update(&id, &parcel, "cancel", "admin:sam"),
                &["--reason", "other"],
            ),
            "`sam` does not hold the `admin` role",
        ),
    ] {
        assert_eq!(
            shop.fails(1, &args),
            format!("orderctl: {expected}"),
            "{args:?}"
        );
    }
    let sunday = shop.at(SUNDAY);
    assert_eq!(
        sunday.fails(1, &update(&id, &parcel, "pick_up", "carrier")),
        "orderctl: `pick_up` is only allowed within `carrier_pickup`; \
         it next opens at 2026-03-09 08:00 UTC"
    );
    let shop = sunday.at(OPEN);
    assert_eq!(
        shop.ok(&["shipment", "history", &id, &parcel]),
        format!("shipment {parcel} of order {id} has no transitions yet\n")
    );
    assert_eq!(shop.json(&["shipment", "history", &id, &parcel]), json!([]));
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "processing");
    assert_eq!(shown["shipments"][0]["state"], "label_created");

    // What names nothing in the shipment machine is a usage error, before the
    // database is opened.
    let empty = Shop::empty();
    let unknown = empty.fails(2, &update("1", "1", "teleport", "carrier"));
    assert_eq!(
        unknown,
        "orderctl: unknown shipment event `teleport`; expected one of: pick_up, cancel, \
         scan, dispatch, deliver, attempt_failed, return_to_sender, report_lost, recover, \
         reverse_delivery"
    );
    for (args, expected) in [
        (
            update("1", "1", "pick_up", "customer:ann@example.com"),
            "--as `customer:ann@example.com`: unknown actor `customer`; expected one of: \
             carrier, system, support:NAME, admin:NAME",
        ),
        (
            with(
                update("1", "1", "cancel", "support"),
                &["--reason", "other"],
            ),
            "--as `support`: `support` must say who they are: `support:NAME`",
        ),
        (
            update("1", "1", "pick_up", "carrier:dhl"),
            "--as `carrier:dhl`: `carrier` takes no name; use `carrier`",
        ),
        (
            with(update("1", "x", "pick_up", "carrier"), &[]),
            "a shipment id is a positive whole number, got `x`",
        ),
        (
            with(
                update("1", "1", "reverse_delivery", "admin:ada"),
                &["--reason", "other", "--dispute", " "],
            ),
            "--dispute cannot be empty",
        ),
    ] {
        assert_eq!(
            empty.fails(2, &args),
            format!("orderctl: {expected}"),
            "{args:?}"
        );
    }
    let reason = empty.fails(
        2,
        &with(
            update("1", "1", "cancel", "support:sam"),
            &["--reason", "whim"],
        ),
    );
    assert!(
        reason.starts_with("orderctl: --reason: unknown reason `whim`; expected one of: "),
        "{reason}"
    );
    assert!(reason.contains("found_after_loss"), "{reason}");
    // The clap-level shape: `--as` is required.
    let out = empty.run(&["shipment", "update", "1", "1", "pick_up"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: "));
    assert!(!empty.path().exists(), "a usage error created the database");
}

#[test]
fn shipment_history_lists_the_parcels_trail() {
    let (shop, id, parcel) = packed();
    shop.ok(&update(&id, &parcel, "pick_up", "carrier"));
    shop.ok(&update(&id, &parcel, "dispatch", "carrier"));
    shop.ok(&with(
        update(&id, &parcel, "attempt_failed", "carrier"),
        &["--reason", "refused_by_recipient"],
    ));

    let table = shop.ok(&["shipment", "history", &id, &parcel]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("SEQ  AT                   EVENT           FROM"),
        "{table}"
    );
    assert!(
        lines[0].ends_with("ACTOR    REASON                EXTERNAL ID"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("  1  2026-03-04 10:00:00  pick_up         label_created"),
        "{table}"
    );
    assert!(lines[3].contains("  attempt_failed  out_for_delivery  failed_attempt"));
    assert!(
        lines[3].ends_with("carrier  refused_by_recipient"),
        "{table}"
    );

    let trail = shop.json(&["shipment", "history", &id, &parcel]);
    let rows = trail.as_array().expect("an array");
    let steps: Vec<(i64, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["seq"].as_i64().expect("seq"),
                r["event"].as_str().expect("event"),
                r["from"].as_str().expect("from"),
                r["to"].as_str().expect("to"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "pick_up", "label_created", "in_transit"),
            (2, "dispatch", "in_transit", "out_for_delivery"),
            (3, "attempt_failed", "out_for_delivery", "failed_attempt"),
        ]
    );
    assert_eq!(
        rows[2],
        json!({
            "seq": 3, "event": "attempt_failed", "from": "out_for_delivery",
            "to": "failed_attempt", "actor": "carrier", "actor_kind": "carrier",
            "reason": "refused_by_recipient", "override": false,
            "at": "2026-03-04T10:00:00Z", "external_id": null, "metadata": null,
        })
    );

    // Another order's parcel, a missing parcel, a missing order.
    let other = shop.order("bob@example.com", &["MUG:1"]).to_string();
    assert_eq!(
        shop.fails(1, &["shipment", "history", &other, &parcel]),
        format!("orderctl: shipment {parcel} is not on order {other}")
    );
    assert_eq!(
        shop.fails(1, &["shipment", "history", &id, "99"]),
        format!("orderctl: shipment 99 is not on order {id}")
    );
    assert_eq!(
        shop.fails(1, &["shipment", "history", "42", &parcel]),
        "orderctl: order 42 does not exist"
    );
}

#[test]
fn inbox_receive_keeps_each_event_once() {
    let (shop, _id, _parcel) = packed();
    let at = "2026-03-04T08:30:00Z";
    let both = json!([
        webhook("evt-1", "pick_up", at, 1),
        webhook("evt-2", "dispatch", "2026-03-04T09:30:00Z", 2)
    ]);
    let file = write(&shop, "both.json", &both);
    assert_eq!(
        shop.ok(&["inbox", "receive", file]),
        "evt-1 (pick_up #1 of T-1): stored\nevt-2 (dispatch #2 of T-1): stored\n"
    );
    let again = shop.json(&["inbox", "receive", file]);
    assert_eq!(
        again,
        json!([
            {"external_id": "evt-1", "tracking_number": "T-1", "kind": "pick_up",
             "sequence": 1, "result": "duplicate"},
            {"external_id": "evt-2", "tracking_number": "T-1", "kind": "dispatch",
             "sequence": 2, "result": "duplicate"},
        ])
    );
    // One event object on stdin; a copy within one delivery is a duplicate too.
    let one = webhook("evt-3", "scan", "2026-03-04T09:00:00Z", 3).to_string();
    let out = shop.run_with_stdin(&["inbox", "receive", "-"], &one);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "evt-3 (scan #3 of T-1): stored\n");
    let twice = format!("[{one}, {one}]");
    let out = shop.run_with_stdin(&["inbox", "receive", "-"], &twice);
    assert_eq!(
        text(&out.stdout),
        "evt-3 (scan #3 of T-1): duplicate\nevt-3 (scan #3 of T-1): duplicate\n"
    );

    let pending = shop.json(&["inbox", "list", "--pending"]);
    let ids: Vec<&str> = pending
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["external_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, ["evt-1", "evt-2", "evt-3"]);
    // The inbox keeps the event as the engine reads it: no reason is a null one.
    let mut stored = both[0].clone();
    stored["reason"] = Value::Null;
    assert_eq!(pending[0]["payload"], stored);
    assert_eq!(pending[0]["outcome"], Value::Null);
    let listed = shop.ok(&["inbox", "list"]);
    assert!(
        listed.starts_with("RECEIVED             EXTERNAL ID  TRACKING  EVENT     SEQ  OUTCOME\n"),
        "{listed}"
    );
    assert!(
        listed.contains("2026-03-04 10:00:00  evt-1        T-1       pick_up     1  pending\n"),
        "{listed}"
    );

    // What is not a carrier webhook: one line, exit 2, nothing stored.
    let bad = write(&shop, "bad.json", &json!({"external_id": "evt-9"}));
    let refused = shop.fails(2, &["inbox", "receive", bad]);
    assert!(
        refused.starts_with("orderctl: `bad.json` is not a carrier event: missing field"),
        "{refused}"
    );
    std::fs::write(shop.dir.path().join("broken.json"), "[{").expect("written");
    let broken = shop.fails(2, &["inbox", "receive", "broken.json"]);
    assert!(
        broken.starts_with("orderctl: `broken.json` is not JSON: "),
        "{broken}"
    );
    let out = shop.run_with_stdin(&["inbox", "receive", "-"], "not json");
    let stdin = one_line_error(&out, 2, &["inbox", "receive", "-"]);
    assert!(
        stdin.starts_with("orderctl: stdin is not JSON: "),
        "{stdin}"
    );
    let missing = shop.fails(2, &["inbox", "receive", "nope.json"]);
    assert!(
        missing.starts_with("orderctl: cannot read `nope.json`: "),
        "{missing}"
    );
    let kind = write(
        &shop,
        "kind.json",
        &json!([webhook("evt-8", "teleport", at, 1)]),
    );
    let refused = shop.fails(2, &["inbox", "receive", kind]);
    assert!(
        refused.starts_with(
            "orderctl: `kind.json`: item 1 is not a carrier event: unknown variant `teleport`"
        ),
        "{refused}"
    );
    assert_eq!(
        shop.json(&["inbox", "list"]).as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn inbox_process_applies_an_out_of_order_pair_in_the_carriers_order() {
    let (shop, id, parcel) = packed();
    assert_eq!(shop.ok(&["inbox", "list"]), "no carrier messages\n");
    // The dispatch arrives first: it waits for the pickup it follows.
    let second = webhook("evt-2", "dispatch", "2026-03-04T09:30:00Z", 2);
    shop.ok(&["inbox", "receive", write(&shop, "second.json", &second)]);
    let report = shop.json(&["inbox", "process"]);
    assert_eq!(
        report,
        json!({
            "carrier":
                {"applied": 0, "stale": 0, "refused": 0, "waiting": 1, "orders_followed": 0},
            "processor":
                {"applied": 0, "in_step": 0, "reconciled": 0, "stale": 0, "refused": 0,
                 "waiting": 0},
        })
    );
    let pending = shop.json(&["inbox", "list", "--pending"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    assert_eq!(shop.json(&["shipment", "history", &id, &parcel]), json!([]));

    let first = webhook("evt-1", "pick_up", "2026-03-04T08:30:00Z", 1);
    shop.ok(&["inbox", "receive", write(&shop, "first.json", &first)]);
    assert_eq!(
        shop.ok(&["inbox", "process"]),
        "carrier inbox: 2 applied, 0 stale, 0 refused, 0 waiting for an earlier event; \
         1 order(s) moved on\n\
         processor inbox: 0 applied, 0 in step, 0 reconciled, 0 stale, 0 refused, \
         0 waiting for an unknown payment\n"
    );
    let trail = shop.json(&["shipment", "history", &id, &parcel]);
    let applied: Vec<(&str, &str, &str, &Value)> = trail
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["event"].as_str().expect("event"),
                r["external_id"].as_str().expect("an external id"),
                r["at"].as_str().expect("at"),
                &r["metadata"]["carrier_sequence"],
            )
        })
        .collect();
    assert_eq!(
        applied,
        [
            ("pick_up", "evt-1", "2026-03-04T08:30:00Z", &json!(1)),
            ("dispatch", "evt-2", "2026-03-04T09:30:00Z", &json!(2)),
        ]
    );
    // The order shipped once its only parcel was picked up.
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "shipped");
    assert_eq!(shown["shipments"][0]["state"], "out_for_delivery");
    assert_eq!(
        shop.ok(&["inbox", "list", "--pending"]),
        "no pending carrier messages\n"
    );

    // A late copy under another id is stale; a parcel nobody ships is refused.
    let late = webhook("evt-1-retry", "scan", "2026-03-04T09:00:00Z", 1);
    let mut stranger = webhook("evt-x", "pick_up", "2026-03-04T08:30:00Z", 1);
    stranger["tracking_number"] = json!("NOPE");
    shop.ok(&[
        "inbox",
        "receive",
        write(&shop, "more.json", &json!([late, stranger])),
    ]);
    let report = shop.json(&["inbox", "process"]);
    assert_eq!(
        (&report["carrier"]["stale"], &report["carrier"]["refused"]),
        (&json!(1), &json!(1))
    );
    let outcomes: BTreeMap<String, String> = shop
        .json(&["inbox", "list"])
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["external_id"].as_str().expect("id").to_owned(),
                m["outcome"].as_str().expect("processed").to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("evt-1", "applied"),
        ("evt-2", "applied"),
        ("evt-1-retry", "stale"),
        ("evt-x", "refused: no shipment has tracking number NOPE"),
    ]
    .into_iter()
    .map(|(id, outcome)| (id.to_owned(), outcome.to_owned()))
    .collect();
    assert_eq!(outcomes, expected);
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

/// `simulate` sends its parcels through the carrier: webhooks received, some twice,
/// applied; parcels delivered, lost and returned to the sender; and it stays clean.
#[test]
fn simulate_reports_the_carriers_webhooks_and_parcels() {
    let shop = Shop::empty();
    let summary = shop.json(&[
        "simulate",
        "--orders",
        "120",
        "--seed",
        "9",
        "--workers",
        "2",
    ]);
    assert_eq!(summary["findings"], json!([]), "{summary}");
    assert_eq!(summary["unexpected"], json!([]), "{summary}");
    let carrier = &summary["carrier"];
    let count = |name: &str| {
        carrier[name]
            .as_u64()
            .unwrap_or_else(|| panic!("carrier.{name}: {carrier}"))
    };
    for name in [
        "events_received",
        "duplicates_dropped",
        "applied",
        "orders_followed",
    ] {
        assert!(count(name) > 0, "carrier.{name}: {carrier}");
    }
    // Every delivery is accounted for: dropped, applied, stale, refused or waiting.
    let settled = [
        "duplicates_dropped",
        "applied",
        "stale",
        "refused",
        "waiting",
    ];
    assert_eq!(
        count("events_received"),
        settled.iter().map(|name| count(name)).sum::<u64>(),
        "{carrier}"
    );
    count("reported_lost_by_support");
    let parcels = &summary["parcels"];
    for state in ["delivered", "lost", "returned_to_sender"] {
        assert!(
            parcels[state].as_u64().unwrap_or(0) > 0,
            "parcels.{state}: {parcels}"
        );
    }
    // The orders moved on by the inbox count among the run's transitions.
    let transitions = summary["transitions"].as_u64().expect("a count");
    assert!(transitions > count("orders_followed"), "{summary}");

    let people = Shop::empty().ok(&["simulate", "--orders", "20", "--seed", "3"]);
    for section in [
        "\norders\n  placed by customers ",
        "\n  split off another order ",
        "\ncarrier webhooks\n  received ",
        "\n  duplicates dropped ",
        "\nparcels\n",
        "\npayments\n  webhooks received ",
        "\n  declined payments retried ",
        "\n  crashes after capturing ",
        "\n  captures completed ",
        "\nmoney\n  captured (processor) ",
        "\nmoney: the books and the processor agree\n",
        "\nverify: clean\n",
    ] {
        assert!(people.contains(section), "{section:?} in {people}");
    }
}

/// A processor webhook of a payment the shop never made.
fn processor_webhook() -> Value {
    json!({
        "external_id": "evt_pay_nobody_1",
        "reference": "pay_nobody",
        "kind": "captured",
        "amount_cents": 1500,
        "occurred_at": "2026-03-04T09:00:00Z",
        "sequence": 1,
    })
}

/// `--source processor` keeps the payment processor's webhooks in an inbox of their own;
/// `inbox process` handles both sources, and one for a payment the shop does not know
/// waits a day (reconciliation may record the payment meanwhile), then is refused, as
/// `inbox list --source processor` shows.
#[test]
fn inbox_refuses_a_processor_webhook_for_an_unknown_payment() {
    let mut shop = Shop::stocked().at("2026-03-04T10:00:00Z");
    let event = processor_webhook();
    let file = write(&shop, "captured.json", &event);
    let receive = ["inbox", "receive", file, "--source", "processor"];
    assert_eq!(
        shop.ok(&receive),
        "evt_pay_nobody_1 (captured #1 of pay_nobody): stored\n"
    );
    assert_eq!(
        shop.json(&receive),
        json!([{"external_id": "evt_pay_nobody_1", "reference": "pay_nobody",
                "kind": "captured", "sequence": 1, "result": "duplicate"}])
    );
    // Not the carrier's: its inbox stays empty.
    assert_eq!(shop.ok(&["inbox", "list"]), "no carrier messages\n");
    let pending = shop.json(&["inbox", "list", "--source", "processor", "--pending"]);
    let mut stored = event.clone();
    stored["refund_reference"] = Value::Null;
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    assert_eq!(pending[0]["source"], "processor");
    assert_eq!(pending[0]["payload"], stored);
    assert_eq!(pending[0]["outcome"], Value::Null);

    let report = |waiting: usize, refused: usize| {
        json!({
            "carrier":
                {"applied": 0, "stale": 0, "refused": 0, "waiting": 0, "orders_followed": 0},
            "processor":
                {"applied": 0, "in_step": 0, "reconciled": 0, "stale": 0, "refused": refused,
                 "waiting": waiting},
        })
    };
    assert_eq!(shop.json(&["inbox", "process"]), report(1, 0));
    assert_eq!(
        shop.ok(&["inbox", "process"]),
        "carrier inbox: 0 applied, 0 stale, 0 refused, 0 waiting for an earlier event; \
         0 order(s) moved on\n\
         processor inbox: 0 applied, 0 in step, 0 reconciled, 0 stale, 0 refused, \
         1 waiting for an unknown payment\n"
    );
    let pending = shop.json(&["inbox", "list", "--source", "processor", "--pending"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    // A day after it came, nothing recorded the payment: refused.
    shop.now = Some("2026-03-05T10:00:00Z".to_owned());
    assert_eq!(shop.json(&["inbox", "process"]), report(0, 1));
    let listed = shop.json(&["inbox", "list", "--source", "processor"]);
    assert_eq!(
        listed[0]["outcome"], "refused: no payment has reference pay_nobody",
        "{listed}"
    );
    let table = shop.ok(&["inbox", "list", "--source", "processor"]);
    assert_eq!(
        table,
        "RECEIVED             EXTERNAL ID       REFERENCE   EVENT     SEQ  AMOUNT  OUTCOME\n\
         2026-03-04 10:00:00  evt_pay_nobody_1  pay_nobody  captured    1   15.00  \
         refused: no payment has reference pay_nobody\n"
    );
    assert_eq!(
        shop.ok(&["inbox", "list", "--source", "processor", "--pending"]),
        "no pending processor messages\n"
    );
    // Handled once: a second pass finds nothing.
    assert_eq!(
        shop.ok(&["inbox", "process"]),
        "carrier inbox: 0 applied, 0 stale, 0 refused, 0 waiting for an earlier event; \
         0 order(s) moved on\n\
         processor inbox: 0 applied, 0 in step, 0 reconciled, 0 stale, 0 refused, \
         0 waiting for an unknown payment\n"
    );

    // What is not a processor webhook: one line, exit 2, nothing stored.
    let carrier = write(
        &shop,
        "carrier.json",
        &webhook("evt-1", "pick_up", "2026-03-04T08:30:00Z", 1),
    );
    let refused = shop.fails(2, &["inbox", "receive", carrier, "--source", "processor"]);
    assert!(
        refused.starts_with("orderctl: `carrier.json` is not a processor event: unknown variant"),
        "{refused}"
    );
    let mut zero = processor_webhook();
    zero["sequence"] = json!(0);
    let zero = write(&shop, "zero.json", &json!([zero]));
    assert_eq!(
        shop.fails(2, &["inbox", "receive", zero, "--source", "processor"]),
        "orderctl: `zero.json`: item 1: the processor's sequence numbers start at 1"
    );
    let out = shop.run_with_stdin(&["inbox", "receive", "-", "--source", "processor"], "[]");
    assert_eq!(
        one_line_error(&out, 2, &["inbox", "receive", "-"]),
        "orderctl: stdin holds no processor events"
    );
    let wrong = shop.run(&["inbox", "receive", file, "--source", "bank"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stderr));
    assert_eq!(
        shop.json(&["inbox", "list", "--source", "processor"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

/// `simulate` runs the payment side too: the processor's webhooks (late, twice, out of
/// order), workers that die mid-payment, reconciliation, and the money checked at the
/// end; and the run is the same whatever the number of workers.
#[test]
fn simulate_settles_the_processors_webhooks_and_the_crashes() {
    let run = |workers: &str| {
        let shop = Shop::empty();
        let mut summary = shop.json(&[
            "simulate",
            "--orders",
            "100",
            "--seed",
            "1",
            "--crash-rate",
            "0.1",
            "--workers",
            workers,
        ]);
        for varies in ["seconds", "transitions_per_second", "workers"] {
            summary[varies] = Value::Null;
        }
        summary
    };
    let summary = run("1");
    assert_eq!(summary, run("4"), "1 and 4 workers");
    assert_eq!(summary["findings"], json!([]), "{summary}");
    assert_eq!(summary["unexpected"], json!([]), "{summary}");
    let money = &summary["money"];
    assert_eq!(money["problems"], json!([]), "{money}");
    assert_eq!(
        money["processor_captured_cents"], money["books_captured_cents"],
        "{money}"
    );
    assert_eq!(
        money["processor_refunded_cents"], money["books_refunded_cents"],
        "{money}"
    );
    assert!(
        money["processor_captured_cents"].as_i64() > Some(0),
        "{money}"
    );

    let payments = &summary["payments"];
    let count = |path: &[&str]| {
        let value = path.iter().fold(payments, |value, name| &value[name]);
        value
            .as_u64()
            .unwrap_or_else(|| panic!("payments.{}: {payments}", path.join(".")))
    };
    for name in ["webhooks_received", "duplicates_dropped", "in_step"] {
        assert!(count(&[name]) > 0, "payments.{name}: {payments}");
    }
    let crashes = count(&["crashes", "authorized"]) + count(&["crashes", "captured"]);
    assert!(crashes > 0, "{payments}");
    assert!(count(&["reconcile", "runs"]) > 0, "{payments}");
    assert!(
        count(&["reconcile", "captures_completed"]) > 0,
        "{payments}"
    );
    // Every crash at a capture was settled, by reconciliation or by the webhook.
    assert!(
        count(&["reconcile", "captures_completed"])
            + count(&["reconcile", "captures_refunded"])
            + count(&["reconciled"])
            >= count(&["crashes", "captured"]),
        "{payments}"
    );
    // Every delivery is accounted for, and none is left unhandled.
    assert_eq!(count(&["pending"]), 0, "{payments}");
    let handled = [
        "duplicates_dropped",
        "applied",
        "in_step",
        "reconciled",
        "stale",
        "refused",
    ];
    assert_eq!(
        count(&["webhooks_received"]),
        handled.iter().map(|name| count(&[name])).sum::<u64>(),
        "{payments}"
    );
    count(&["authorizations_expired"]);
    count(&["chargebacks"]);
    count(&["refunds_reversed"]);
    // Support retried some declined payments, and some orders were split, each part
    // living on as an order of its own.
    assert!(count(&["retries"]) > 0, "{payments}");
    let splits = summary["splits"].as_i64().expect("a count of splits");
    assert!(splits > 0, "{summary}");
    let states: i64 = summary["states"]
        .as_object()
        .expect("states")
        .values()
        .filter_map(Value::as_i64)
        .sum();
    assert_eq!(states, 100 + splits, "{summary}");
}
