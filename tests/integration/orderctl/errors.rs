//! Bad arguments exit 2 and refusals exit 1, each with one line naming the problem.

use super::{Shop, one_line_error, run_in, text};

/// Values that name nothing in the machine, or are not in the form asked for: exit 2,
/// one line naming the argument and what it accepts.
#[test]
fn bad_arguments_exit_2_with_one_line_naming_the_problem() {
    let shop = Shop::stocked();
    let id = shop.order("ann@example.com", &["MUG:1"]).to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["fire", &id, "teleport", "--as", "system"],
            "orderctl: unknown event `teleport`; expected one of: confirm, pay, cancel,",
        ),
        (
            &["list", "--state", "pending,shiped"],
            "orderctl: --state: unknown state `shiped`; expected one of: pending, confirmed,",
        ),
        (
            &["list", "--not-state", "nope"],
            "orderctl: --not-state: unknown state `nope`",
        ),
        (
            &["bulk", "cancel", "--state", "lost", "--as", "system"],
            "orderctl: --state: unknown state `lost`",
        ),
        (
            &["fire", &id, "confirm", "--as", "boss:x"],
            "orderctl: --as `boss:x`: unknown actor `boss`; expected one of: customer:EMAIL, support:NAME, admin:NAME, system, carrier",
        ),
        (
            &["fire", &id, "confirm", "--as", "customer"],
            "orderctl: --as `customer`: `customer` must say who they are: `customer:EMAIL`",
        ),
        (
            &["available", &id, "--as", "support:"],
            "orderctl: --as `support:`: `support` must say who they are: `support:NAME`",
        ),
        (
            &["fire", &id, "confirm", "--as", "system:bot"],
            "orderctl: --as `system:bot`: `system` takes no name; use `system`",
        ),
        (
            &[
                "fire",
                &id,
                "cancel",
                "--as",
                "support:sam",
                "--reason",
                "whim",
            ],
            "orderctl: --reason: unknown reason `whim`; expected one of: customer_request,",
        ),
        (
            &["fire", "abc", "confirm", "--as", "system"],
            "orderctl: an order id is a positive whole number, got `abc`",
        ),
        (
            &["history", "0"],
            "orderctl: an order id is a positive whole number, got `0`",
        ),
        (
            &["bulk", "cancel", "--ids", "1,x", "--as", "system"],
            "orderctl: --ids: an order id is a positive whole number, got `x`",
        ),
        (
            &["order", "create", "--customer", "a@b", "--item", "MUG"],
            "orderctl: --item `MUG` is not SKU:QTY (e.g. `MUG:1`)",
        ),
        (
            &["order", "create", "--customer", "a@b", "--item", "MUG:none"],
            "orderctl: --item `MUG:none`: the quantity after `:` must be a positive whole number",
        ),
        (
            &["staff", "add", "bob", "--role", "boss"],
            "orderctl: --role: `boss` is not a staff role; expected one of: support, admin",
        ),
    ];
    for (args, expected) in cases {
        let line = shop.fails(2, args);
        assert!(
            line.starts_with(expected),
            "orderctl {args:?}:\n{line}\nexpected {expected}"
        );
    }
}

/// The engine's refusals name the rule: exit 1, one line.
#[test]
fn refusals_exit_1_with_one_line_naming_the_rule() {
    let shop = Shop::stocked();
    let id = shop.order("ann@example.com", &["TEE:1"]).to_string();
    let greedy = shop.order("bob@example.com", &["TEE:1"]).to_string();
    shop.ok(&["fire", &id, "confirm", "--as", "system"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["fire", &greedy, "confirm", "--as", "system"],
            "orderctl: guard `inventory_available` was false in `when inventory_available` of `confirm`",
        ),
        (
            &["fire", &greedy, "pay", "--as", "system"],
            "orderctl: `pay` is not a transition from `pending`; system may fire: confirm",
        ),
        (
            &["fire", &id, "pay", "--as", "system"],
            "orderctl: guard `payment_authorized` was false",
        ),
        (
            &["fire", &id, "cancel", "--as", "support:sam"],
            "orderctl: `cancel` by `support` requires a reason",
        ),
        (
            &[
                "fire",
                &id,
                "cancel",
                "--as",
                "support:nobody",
                "--reason",
                "other",
            ],
            "orderctl: `nobody` does not hold the `support` role",
        ),
        (
            &[
                "fire",
                &id,
                "cancel",
                "--as",
                "admin:sam",
                "--reason",
                "other",
            ],
            "orderctl: `sam` does not hold the `admin` role",
        ),
        (
            &["fire", &id, "cancel", "--as", "customer:eve@example.com"],
            "orderctl: customer `eve@example.com` does not own order",
        ),
        (
            &["fire", &id, "deliver", "--as", "carrier"],
            "orderctl: `deliver` is not a transition from `confirmed`",
        ),
        (
            &["order", "create", "--customer", "a@b", "--item", "NOPE:1"],
            "orderctl: unknown product `NOPE`",
        ),
        (
            &[
                "product", "add", "MUG", "--name", "Mug", "--price", "1", "--stock", "1",
            ],
            "orderctl: product `MUG` already exists",
        ),
        (
            &[
                "product", "add", "CUP", "--name", "Cup", "--price", "-1", "--stock", "1",
            ],
            "orderctl: the price of `CUP` cannot be negative",
        ),
    ];
    for (args, expected) in cases {
        let line = shop.fails(1, args);
        assert!(
            line.starts_with(expected),
            "orderctl {args:?}:\n{line}\nexpected {expected}"
        );
    }
    // Nothing moved.
    assert_eq!(
        shop.json(&["history", &id]).as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(shop.json(&["history", &greedy]), serde_json::json!([]));
}

#[test]
fn a_missing_order_exits_1() {
    let shop = Shop::stocked();
    for args in [
        &["fire", "42", "confirm", "--as", "system"][..],
        &["available", "42", "--as", "system"],
        &["history", "42"],
    ] {
        assert_eq!(shop.fails(1, args), "orderctl: order 42 does not exist");
    }
    // In bulk, it is that order's outcome.
    let out = shop.run(&["bulk", "confirm", "--ids", "42", "--as", "system", "--json"]);
    let line = one_line_error(&out, 1, &["bulk"]);
    assert_eq!(
        line,
        "orderctl: 1 of 1 orders refused `confirm` (order_not_found: 1)"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["items"][0]["error"], "order 42 does not exist");
}

/// What clap itself refuses: exit 2 with clap's usage message.
#[test]
fn usage_errors_from_clap_exit_2() {
    let shop = Shop::stocked();
    for args in [
        &[][..],
        &["teleport"],
        &["fire", "1", "confirm"],
        &["fire", "1"],
        &["bulk", "cancel", "--as", "system"],
        &[
            "bulk", "cancel", "--ids", "1", "--state", "pending", "--as", "system",
        ],
        &["graph", "--format", "png"],
        &["list", "--limit", "many"],
        &["order", "create", "--customer", "a@b"],
        &[
            "product", "add", "CUP", "--name", "Cup", "--price", "cheap", "--stock", "1",
        ],
    ] {
        let out = shop.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "orderctl {args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "orderctl {args:?}: {stderr}");
        assert!(stderr.contains("--help"), "orderctl {args:?}: {stderr}");
    }
    let help = shop.ok(&["--help"]);
    assert!(help.contains("Exit codes: 0 success"), "{help}");
}

#[test]
fn a_usage_error_creates_no_database() {
    let shop = Shop::empty();
    shop.fails(2, &["fire", "1", "teleport", "--as", "system"]);
    shop.fails(2, &["list", "--state", "nope"]);
    assert!(!shop.path().exists());
}

#[test]
fn unreachable_and_unknown_urls_exit_1_with_one_line() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    // Port 1 refuses connections; the password never shows.
    for url in [
        "postgres://shop:secret@127.0.0.1:1/orders?connect_timeout=2",
        "postgresql://127.0.0.1:1/orders?connect_timeout=2",
    ] {
        let out = run_in(dir.path(), &["--db", url, "list"]);
        let line = one_line_error(&out, 1, &[url]);
        assert!(
            line.starts_with("orderctl: cannot open `postgres"),
            "{line}"
        );
        assert!(!line.contains("secret"), "{line}");
    }
    let out = run_in(dir.path(), &["--db", "mysql://localhost/orders", "init"]);
    let line = one_line_error(&out, 1, &["mysql"]);
    assert!(
        line.contains("unsupported database URL `mysql://localhost/orders`"),
        "{line}"
    );
    let missing = format!(
        "sqlite://{}",
        dir.path().join("no/such/folder/x.db").display()
    );
    let out = run_in(dir.path(), &["--db", &missing, "list"]);
    let line = one_line_error(&out, 1, &["missing folder"]);
    assert!(line.contains(&format!("cannot open `{missing}`")), "{line}");
}
