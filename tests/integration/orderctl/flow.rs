//! Orders through their lifecycle from the command line, checked through `--json`.

use serde_json::Value;

use super::{Shop, run_in};

fn ids(orders: &Value) -> Vec<i64> {
    orders
        .as_array()
        .expect("an array of orders")
        .iter()
        .map(|o| o["id"].as_i64().expect("an id"))
        .collect()
}

#[test]
fn init_product_staff_order_fire_available_list_stats_history_bulk_verify() {
    let shop = Shop::empty();
    let init = shop.json(&["init"]);
    assert_eq!(init["schema"], "up to date");
    assert!(shop.path().exists(), "init creates the database file");
    shop.ok(&["init"]); // idempotent

    let mug = shop.json(&[
        "product", "add", "MUG", "--name", "Mug", "--price", "1500", "--stock", "10",
    ]);
    assert_eq!(mug["sku"], "MUG");
    assert_eq!(mug["price_cents"], 1500);
    assert_eq!(mug["on_hand"], 10);
    let sam = shop.json(&["staff", "add", "sam", "--role", "support"]);
    assert_eq!(sam, serde_json::json!({"name": "sam", "role": "support"}));

    let order = shop.json(&[
        "order",
        "create",
        "--customer",
        "ann@example.com",
        "--item",
        "MUG:2",
        "--item",
        "MUG:1",
    ]);
    let id = order["id"].as_i64().expect("an id");
    assert_eq!(order["number"], format!("ORD-{id:06}"));
    assert_eq!(order["state"], "pending");
    assert_eq!(order["customer_email"], "ann@example.com");
    assert_eq!(order["total_cents"], 4500);
    assert_eq!(order["items"].as_array().map(Vec::len), Some(2));
    let id_text = id.to_string();

    let fired = shop.json(&["fire", &id_text, "confirm", "--as", "system"]);
    assert_eq!(fired["from"], "pending");
    assert_eq!(fired["to"], "confirmed");
    assert_eq!(fired["seq"], 1);
    assert_eq!(fired["replayed"], false);

    // Support may cancel (with a reason) but not pay; confirm is not from `confirmed`.
    let available = shop.json(&["available", &id_text, "--as", "support:sam"]);
    let answer = |event: &str| -> Value {
        available
            .as_array()
            .expect("an array")
            .iter()
            .find(|a| a["event"] == event)
            .cloned()
            .unwrap_or_else(|| panic!("no answer for {event}: {available}"))
    };
    let cancel = answer("cancel");
    assert_eq!(cancel["allowed"], true, "{cancel}");
    assert_eq!(cancel["to"], "cancelled");
    assert_eq!(cancel["needs_reason"], true);
    assert_eq!(cancel["reason"], Value::Null);
    let pay = answer("pay");
    assert_eq!(pay["allowed"], false);
    assert_eq!(pay["step"], "authorization");
    assert!(
        pay["reason"]
            .as_str()
            .is_some_and(|r| r.contains("may not fire `pay`")),
        "{pay}"
    );
    assert_eq!(answer("confirm")["allowed"], false);

    let second = shop.order("bob@example.com", &["MUG:1"]);
    assert_eq!(ids(&shop.json(&["list", "--state", "confirmed"])), vec![id]);
    assert_eq!(
        ids(&shop.json(&["list", "--state", "pending,confirmed"])),
        vec![id, second]
    );
    assert_eq!(
        ids(&shop.json(&["list", "--not-state", "confirmed"])),
        vec![second]
    );
    assert_eq!(
        ids(&shop.json(&["list", "--customer", "bob@example.com"])),
        vec![second]
    );
    assert_eq!(ids(&shop.json(&["list", "--limit", "1"])), vec![id]);
    let listed = shop.json(&["list"]);
    assert_eq!(listed[0]["state"], "confirmed");
    assert_eq!(listed[1]["number"], format!("ORD-{second:06}"));

    let stats = shop.json(&["stats"]);
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["states"]["pending"], 1);
    assert_eq!(stats["states"]["confirmed"], 1);
    assert_eq!(stats["states"]["shipped"], 0);
    assert_eq!(stats["payment"]["none"], 2);
    assert_eq!(stats["fulfillment"]["unfulfilled"], 2);

    let history = shop.json(&["history", &id_text]);
    let entry = &history[0];
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(entry["seq"], 1);
    assert_eq!(entry["event"], "confirm");
    assert_eq!(entry["from"], "pending");
    assert_eq!(entry["to"], "confirmed");
    assert_eq!(entry["actor"], "system");
    assert_eq!(entry["reason"], Value::Null);
    assert_eq!(entry["override"], false);
    let at = entry["at"].as_str().expect("a timestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "not RFC 3339: {at}"
    );

    // A dry run changes nothing; the real run cancels both and releases their stock.
    let bulk = [
        "bulk",
        "cancel",
        "--state",
        "pending,confirmed",
        "--as",
        "support:sam",
    ];
    let reason = ["--reason", "customer_request"];
    let dry = shop.json(&[&bulk[..], &reason[..], &["--dry-run"]].concat());
    assert_eq!(dry["counts"], serde_json::json!({"would_fire": 2}));
    assert_eq!(dry["items"][0]["order"], id);
    assert_eq!(dry["items"][0]["transition"]["to"], "cancelled");
    assert_eq!(
        ids(&shop.json(&["list", "--state", "cancelled"])),
        Vec::<i64>::new()
    );
    let real = shop.json(&[&bulk[..], &reason[..]].concat());
    assert_eq!(real["counts"], serde_json::json!({"fired": 2}));
    assert_eq!(
        ids(&shop.json(&["list", "--state", "cancelled"])),
        vec![id, second]
    );
    assert_eq!(shop.json(&["product", "list"])[0]["reserved"], 0);

    let cancelled = shop.json(&["history", &id_text]);
    assert_eq!(cancelled[1]["event"], "cancel");
    assert_eq!(cancelled[1]["actor"], "support:sam");
    assert_eq!(cancelled[1]["reason"], "customer_request");

    let verify = shop.json(&["verify"]);
    assert_eq!(verify, serde_json::json!({"ok": true, "findings": []}));
}

#[test]
fn a_new_database_needs_no_init_and_defaults_to_orders_db_in_the_working_folder() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = run_in(
        dir.path(),
        &[
            "product", "add", "MUG", "--name", "Mug", "--price", "1", "--stock", "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", super::text(&out.stderr));
    assert!(dir.path().join("orders.db").exists());
    let out = run_in(dir.path(), &["product", "list", "--json"]);
    let products: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(products[0]["sku"], "MUG");
}

#[test]
fn fire_records_reason_note_and_key_and_a_repeated_key_replays() {
    let shop = Shop::stocked();
    let id = shop.order("ann@example.com", &["MUG:1"]).to_string();
    let args = [
        "fire",
        &id,
        "cancel",
        "--as",
        "support:sam",
        "--reason",
        "duplicate_order",
    ];
    let first = shop.json(&[&args[..], &["--note", "asked twice", "--key", "k-1"]].concat());
    assert_eq!(first["to"], "cancelled");
    assert_eq!(first["replayed"], false);
    let again = shop.json(&[&args[..], &["--key", "k-1"]].concat());
    assert_eq!(again["replayed"], true);
    assert_eq!(again["seq"], 1);
    let history = shop.json(&["history", &id]);
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["note"], "asked twice");
    assert_eq!(history[0]["reason"], "duplicate_order");
    assert_eq!(history[0]["idempotency_key"], "k-1");

    // An admin's override out of a final state is marked as one.
    let reopened = shop.json(&[
        "fire",
        &id,
        "reopen",
        "--as",
        "admin:ada",
        "--reason",
        "goodwill",
    ]);
    assert_eq!(reopened["is_override"], true);
    assert_eq!(shop.json(&["history", &id])[1]["override"], true);
}

#[test]
fn customers_fire_their_own_orders() {
    let shop = Shop::stocked();
    let id = shop.order("ann@example.com", &["TEE:1"]).to_string();
    let available = shop.json(&["available", &id, "--as", "customer:ann@example.com"]);
    let allowed: Vec<&str> = available
        .as_array()
        .expect("an array")
        .iter()
        .filter(|a| a["allowed"] == true)
        .map(|a| a["event"].as_str().expect("an event"))
        .collect();
    assert_eq!(allowed, ["confirm", "cancel"]);
    let fired = shop.json(&["fire", &id, "confirm", "--as", "customer:ann@example.com"]);
    assert_eq!(fired["to"], "confirmed");
    assert_eq!(shop.json(&["product", "list"])[1]["reserved"], 1);
}

#[tokio::test]
async fn verify_exits_1_with_the_findings_when_an_invariant_breaks() {
    use order_core::{OrderId, SqliteStore, Store as _};

    let shop = Shop::stocked();
    let id = shop.order("ann@example.com", &["MUG:1"]);
    // Move the order without an audit row, as a stray UPDATE would.
    let store = SqliteStore::connect(&shop.url)
        .await
        .expect("the database opens");
    let mut tx = store.begin().await.expect("a transaction");
    let mut order = tx
        .lock_order(OrderId(id))
        .await
        .expect("a read")
        .expect("the order");
    order.state = order_core::order::State::Shipped;
    assert!(
        tx.update_order(&order, chrono::Utc::now())
            .await
            .expect("a write")
    );
    tx.commit().await.expect("a commit");
    store.pool().close().await;

    let out = shop.run(&["verify", "--json"]);
    let stderr = super::one_line_error(&out, 1, &["verify"]);
    assert!(stderr.contains("state_matches_audit"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    assert_eq!(report["findings"][0]["check"], "state_matches_audit");
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`shipped`"))
    );
    let human = shop.run(&["verify"]);
    assert_eq!(human.status.code(), Some(1));
    assert!(
        super::text(&human.stdout).starts_with("CHECK"),
        "{}",
        super::text(&human.stdout)
    );
}
