//! What people read: one-line summaries and aligned tables; and the graphs.

use tests::{read, workspace_root};

use super::Shop;
use super::operations::{OPEN, fire, line, paid};

#[test]
fn graphs_are_the_committed_exports_and_need_no_database() {
    let shop = Shop::empty();
    let root = workspace_root();
    assert_eq!(
        shop.ok(&["graph", "--format", "mermaid"]),
        read(&root.join("machines/order.mmd"))
    );
    assert_eq!(shop.ok(&["graph"]), read(&root.join("machines/order.dot")));
    let json = shop.json(&["graph", "--format", "dot"]);
    assert_eq!(json["format"], "dot");
    assert_eq!(
        json["graph"].as_str(),
        Some(read(&root.join("machines/order.dot")).as_str())
    );
    assert!(!shop.path().exists(), "graph opened the database");
}

#[test]
fn commands_print_lines_and_tables_for_people() {
    let shop = Shop::empty();
    assert_eq!(
        shop.ok(&["init"]),
        format!("{}: schema up to date\n", shop.url)
    );
    assert_eq!(
        shop.ok(&[
            "product", "add", "MUG", "--name", "Mug", "--price", "1500", "--stock", "10"
        ]),
        "product MUG (Mug): 15.00, 10 in stock\n"
    );
    assert_eq!(
        shop.ok(&["staff", "add", "sam", "--role", "support"]),
        "staff sam: support\n"
    );
    assert_eq!(
        shop.ok(&[
            "order",
            "create",
            "--customer",
            "ann@example.com",
            "--item",
            "MUG:2",
            "--item",
            "MUG:1"
        ]),
        "order 1 (ORD-000001) pending, 3 items, 45.00 EUR, customer ann@example.com\n"
    );
    assert_eq!(
        shop.ok(&["fire", "1", "confirm", "--as", "system"]),
        "order 1: pending -> confirmed (confirm by system, seq 1)\n"
    );
    assert_eq!(
        shop.ok(&["product", "list"]),
        "SKU  NAME  PRICE  ON HAND  RESERVED  AVAILABLE\n\
         MUG  Mug   15.00       10         3          7\n"
    );

    let list = shop.ok(&["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("ID  NUMBER      STATE      CUSTOMER"),
        "{list}"
    );
    assert!(
        lines[1].starts_with(" 1  ORD-000001  confirmed  ann@example.com  45.00 EUR  none"),
        "{list}"
    );
    assert_eq!(shop.ok(&["list", "--state", "paid"]), "no orders\n");

    let stats = shop.ok(&["stats"]);
    assert!(
        stats.starts_with("STATE       ORDERS\npending          0\nconfirmed        1\n"),
        "{stats}"
    );
    assert!(stats.contains("total            1\n"), "{stats}");
    assert!(stats.contains("\nPAYMENT "), "{stats}");
    assert!(stats.contains("\nFULFILLMENT "), "{stats}");

    let history = shop.ok(&["history", "1"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(
        lines[0],
        "SEQ  AT                   EVENT    FROM     TO         ACTOR   REASON  NOTE"
    );
    assert!(lines[1].starts_with("  1  "), "{history}");
    assert!(
        lines[1].ends_with("confirm  pending  confirmed  system"),
        "{history}"
    );

    let available = shop.ok(&["available", "1", "--as", "support:sam"]);
    assert!(
        available.starts_with("order 1 is `confirmed`; what support:sam may fire:\nEVENT "),
        "{available}"
    );
    assert!(
        available.contains("\ncancel  yes, with --reason  cancelled\n"),
        "{available}"
    );
    assert!(
        available.contains("\nno transition from `confirmed`: confirm, start_processing,"),
        "{available}"
    );

    assert_eq!(shop.ok(&["verify"]), "every invariant holds\n");
}

#[test]
fn bulk_prints_each_order_and_the_counts_and_exits_1_when_any_is_refused() {
    let shop = Shop::stocked();
    let first = shop.order("ann@example.com", &["MUG:1"]);
    let second = shop.order("bob@example.com", &["MUG:1"]);
    shop.ok(&[
        "fire",
        &first.to_string(),
        "cancel",
        "--as",
        "customer:ann@example.com",
    ]);
    let ids = format!("{first},{second}");

    let out = shop.run(&["bulk", "confirm", "--ids", &ids, "--as", "system"]);
    let line = super::one_line_error(&out, 1, &["bulk"]);
    assert_eq!(
        line,
        "orderctl: 1 of 2 orders refused `confirm` (invalid_transition: 1)"
    );
    let stdout = super::text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "ORDER  OUTCOME             DETAIL");
    assert!(
        lines[1].starts_with(
            "    1  invalid_transition  `confirm` is not a transition from `cancelled`"
        ),
        "{stdout}"
    );
    assert_eq!(lines[2], "    2  fired               pending -> confirmed");
    assert_eq!(lines[3], "fired: 1, invalid_transition: 1");

    assert_eq!(
        shop.ok(&["bulk", "confirm", "--state", "paid", "--as", "system"]),
        "no orders matched\n"
    );
    let report = shop.json(&[
        "bulk",
        "cancel",
        "--state",
        "paid",
        "--as",
        "system",
        "--dry-run",
    ]);
    assert_eq!(
        report["items"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}

/// `order show`, the operations' one-line summaries and `history --attempts`.
#[test]
fn operations_print_lines_and_tables_for_people() {
    let (shop, id) = paid(OPEN);
    assert_eq!(
        shop.ok(&["order", "address", &id, "Main St 1"]),
        format!("order {id}: shipping address set to `Main St 1`\n")
    );
    assert_eq!(
        shop.ok(&["order", "note", &id, "call first", "--as", "sam"]),
        format!("order {id}: note added by sam\n")
    );
    fire(&shop, &id, "start_processing", "system", &[], "processing");
    let mug = line(&shop, &id, "MUG");
    assert_eq!(
        shop.ok(&[
            "shipment",
            "add",
            &id,
            "--line",
            &format!("{mug}:2"),
            "--carrier",
            "DHL",
            "--tracking",
            "T-9"
        ]),
        format!(
            "order {id}: shipment 1 by DHL (tracking T-9) with {mug}:2; fulfillment partially_shipped\n"
        )
    );
    shop.fails(1, &["fire", &id, "ship", "--as", "system"]);
    let carry = |event: &str| shop.ok(&["shipment", "update", &id, "1", event, "--as", "carrier"]);
    // The order does not follow yet: a tee is still on the shelf.
    assert_eq!(
        carry("pick_up"),
        format!(
            "order {id}: shipment 1 label_created -> in_transit (pick_up by carrier, seq 1); \
             fulfillment partially_shipped\n"
        )
    );
    carry("dispatch");
    assert_eq!(
        carry("deliver"),
        format!(
            "order {id}: shipment 1 out_for_delivery -> delivered (deliver by carrier, seq 3); \
             fulfillment partially_shipped\n"
        )
    );

    let shown = shop.ok(&["order", "show", &id]);
    let expected_start = format!(
        "order {id} (ORD-{:06}) processing, customer ann@example.com, 50.00 EUR\n\
         payment captured, fulfillment partially_shipped\n\
         shipping address: Main St 1\n\n\
         LINE  SKU  QTY  SHIPPED  RETURNED  UNIT PRICE\n",
        id.parse::<i64>().expect("id")
    );
    assert!(shown.starts_with(&expected_start), "{shown}");
    assert!(
        shown.contains("\nATTEMPT  STATE        AMOUNT  REFERENCE\n"),
        "{shown}"
    );
    assert!(
        shown.contains("captured  50.00 EUR  pay_000001\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nSHIPMENT  STATE      CARRIER  TRACKING  LINES\n"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "       1  delivered  DHL      T-9       {mug}:2\n"
        )),
        "{shown}"
    );
    assert!(shown.contains("\nrefused attempts:\nAT  "), "{shown}");
    assert!(
        shown
            .trim_end()
            .ends_with("guard `all_items_shipped` was false in `when all_items_shipped` of `ship`"),
        "{shown}"
    );

    let history = shop.ok(&["history", &id, "--attempts"]);
    assert!(history.starts_with("SEQ  AT "), "{history}");
    assert!(
        history.contains("\n\nrefused attempts:\nAT                   EVENT  ACTOR   KIND "),
        "{history}"
    );

    let fresh = shop.order("bob@example.com", &["MUG:1"]).to_string();
    assert_eq!(
        shop.ok(&["history", &fresh, "--attempts"]),
        format!("order {fresh} has no transitions yet\n\nno refused attempts\n")
    );
    let shown = shop.ok(&["order", "show", &fresh]);
    assert!(
        shown.contains("\n\nno payments\n\nno shipments\n\nno refused attempts\n"),
        "{shown}"
    );
    assert_eq!(
        shop.ok(&[
            "order", "modify", &fresh, "--item", "MUG:2", "--item", "MUG:1"
        ]),
        format!("order {fresh}: now 2 lines, 3 items, 45.00 EUR\n")
    );
    fire(&shop, &fresh, "confirm", "system", &[], "confirmed");
    assert_eq!(
        shop.ok(&["order", "authorize", &fresh]),
        format!(
            "order {fresh}: payment attempt 1 authorized, 45.00 EUR, reference pay_000002; payment authorized\n"
        )
    );
}

/// `orderctl --json list | head -1`: the reader leaves after one line while orderctl
/// is still writing, like `ls | head`, and orderctl ends quietly with 0 instead of
/// panicking on the broken pipe.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let shop = Shop::empty();
    // 400 orders (bench's catalog, all cancelled) list as about 170 KB of JSON: more
    // than a pipe holds (64 KiB on Linux), so orderctl is blocked writing the rest when
    // the reader leaves, and its next write fails.
    shop.ok(&["bench", "--bulk", "400"]);
    let mut child = shop
        .command(&["--json", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orderctl starts");
    let mut reader = BufReader::new(child.stdout.take().expect("a stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("orderctl writes");
    assert_eq!(first, "[\n");
    drop(reader);
    let out = child.wait_with_output().expect("orderctl ends");
    let stderr = super::text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr, "",
        "nothing to report when the reader has all it wanted"
    );
}
