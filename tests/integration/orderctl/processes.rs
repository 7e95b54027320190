//! Several `orderctl` processes at once on one database, SQLite file and PostgreSQL:
//! conflicting commands never lose an update and never oversell.

use std::process::{Child, Stdio};

use super::Shop;

/// Four processes each try to confirm all of 100 one-unit orders of a product with 10
/// in stock: exactly 10 orders are confirmed, 10 units reserved, each confirmed once.
fn four_processes_compete_for_scarce_stock(shop: &Shop) {
    shop.ok(&[
        "product", "add", "RARE", "--name", "Rare", "--price", "100", "--stock", "10",
    ]);
    let ids: Vec<String> = (0..100)
        .map(|n| {
            shop.order(&format!("c{n}@example.com"), &["RARE:1"])
                .to_string()
        })
        .collect();
    let ids = ids.join(",");
    let children: Vec<Child> = (0..4)
        .map(|_| {
            shop.command(&["--json", "bulk", "confirm", "--ids", &ids, "--as", "system"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("orderctl starts")
        })
        .collect();
    let mut fired = 0;
    for child in children {
        let out = child.wait_with_output().expect("orderctl ends");
        // Refusals make bulk exit 1; the report is on stdout either way.
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        fired += report["counts"]["fired"].as_u64().unwrap_or(0);
        let unexpected: Vec<&serde_json::Value> = report["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| {
                !["fired", "guard_failed", "invalid_transition"]
                    .contains(&i["outcome"].as_str().unwrap_or(""))
            })
            .collect();
        assert!(unexpected.is_empty(), "{unexpected:#?}");
    }
    assert_eq!(
        fired, 10,
        "exactly ten confirmations across the four processes"
    );
    let confirmed = shop.json(&["list", "--state", "confirmed"]);
    assert_eq!(confirmed.as_array().map(Vec::len), Some(10));
    for order in confirmed.as_array().expect("orders") {
        let id = order["id"].to_string();
        let history = shop.json(&["history", &id]);
        assert_eq!(
            history.as_array().map(Vec::len),
            Some(1),
            "order {id} confirmed once"
        );
    }
    let products = shop.json(&["product", "list"]);
    let rare = products
        .as_array()
        .and_then(|p| p.iter().find(|p| p["sku"] == "RARE"))
        .expect("RARE is listed");
    assert_eq!(
        (rare["on_hand"].as_i64(), rare["reserved"].as_i64()),
        (Some(10), Some(10))
    );
    shop.ok(&["verify"]);
}

#[test]
fn processes_share_a_sqlite_file() {
    four_processes_compete_for_scarce_stock(&Shop::stocked());
}

#[test]
fn processes_share_a_postgres_database() {
    four_processes_compete_for_scarce_stock(&Shop::postgres().stock());
}

/// The whole command line works on PostgreSQL too: a lifecycle from creation to
/// delivery, queries, history and verify.
#[test]
fn a_lifecycle_on_postgres() {
    // A Wednesday morning in Berlin: the warehouse is open.
    let shop = Shop::postgres().at("2026-03-11T09:00:00Z").stock();
    let id = shop.order("ann@example.com", &["MUG:2"]).to_string();
    shop.ok(&["fire", &id, "confirm", "--as", "system"]);
    shop.ok(&["order", "authorize", &id]);
    shop.ok(&["fire", &id, "pay", "--as", "customer:ann@example.com"]);
    shop.ok(&["fire", &id, "start_processing", "--as", "system"]);
    shop.ok(&["shipment", "add", &id, "--all", "--carrier", "dhl"]);
    shop.ok(&["fire", &id, "ship", "--as", "support:sam"]);
    let shown = shop.json(&["order", "show", &id]);
    let parcel = shown["shipments"][0]["id"].to_string();
    for event in ["pick_up", "dispatch", "deliver"] {
        shop.ok(&["shipment", "update", &id, &parcel, event, "--as", "carrier"]);
    }
    let history = shop.json(&["history", &id]);
    let to: Vec<&str> = history
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["to"].as_str())
        .collect();
    assert_eq!(
        to,
        ["confirmed", "paid", "processing", "shipped", "delivered"]
    );
    let delivered = shop.json(&["list", "--state", "delivered"]);
    assert_eq!(delivered.as_array().map(Vec::len), Some(1));
    let stats = shop.json(&["stats"]);
    assert_eq!(stats["states"]["delivered"], 1, "{stats}");
    let available = shop.json(&["available", &id, "--as", "support:sam"]);
    let allowed: Vec<&str> = available
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["allowed"] == true)
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(allowed, ["return_delivered"]);
    let refused = shop.fails(
        1,
        &["fire", &id, "cancel", "--as", "customer:ann@example.com"],
    );
    assert!(
        refused.contains("`cancel` is not a transition from `delivered`"),
        "{refused}"
    );
    shop.ok(&["verify"]);
}

/// `simulate` and `bench`, run as a user runs them: each ends with `verify` clean and
/// prints its figures; `--json` carries them for scripts.
#[test]
fn simulate_and_bench_run_on_sqlite_and_postgres() {
    for shop in [Shop::empty(), Shop::postgres()] {
        let summary = shop.json(&[
            "simulate",
            "--orders",
            "40",
            "--workers",
            "3",
            "--seed",
            "5",
        ]);
        assert_eq!(
            summary["findings"].as_array().map(Vec::len),
            Some(0),
            "{summary}"
        );
        assert_eq!(
            summary["unexpected"].as_array().map(Vec::len),
            Some(0),
            "{summary}"
        );
        let states: i64 = summary["states"]
            .as_object()
            .expect("states")
            .values()
            .filter_map(|v| v.as_i64())
            .sum();
        // The orders customers placed and the ones split off them.
        let splits = summary["splits"].as_i64().expect("a count of splits");
        assert_eq!(states, 40 + splits, "{summary}");
        assert!(
            summary["transitions"].as_u64().unwrap_or(0) > 80,
            "{summary}"
        );
        // A second run refuses the shop the first one left, in one line.
        let again = shop.fails(1, &["simulate", "--orders", "5"]);
        assert!(again.contains("already holds a shop"), "{again}");
    }
    for (shop, baseline) in [
        (Shop::empty(), "store calls"),
        (Shop::postgres(), "pgbench"),
    ] {
        let report = shop.json(&["bench", "--clients", "2", "--orders", "10", "--rounds", "3"]);
        assert_eq!(report["baseline"], baseline, "{report}");
        assert_eq!(report["verify_clean"], true, "{report}");
        let ratio = report["ratio"].as_f64().expect("a ratio");
        assert!(ratio > 0.0, "{report}");
        assert_eq!(report["engine_rounds"].as_array().map(Vec::len), Some(3));
    }
}

/// The same seed gives the same shop, run after run.
#[test]
fn simulate_is_the_same_for_the_same_seed() {
    let run = || {
        let shop = Shop::empty();
        let mut summary = shop.json(&[
            "simulate",
            "--orders",
            "30",
            "--seed",
            "11",
            "--workers",
            "4",
        ]);
        for timing in ["seconds", "transitions_per_second"] {
            summary[timing] = serde_json::Value::Null;
        }
        summary
    };
    assert_eq!(run(), run());
}
