//! The command line's payment processor: a simulator whose books are a journal file that
//! every `orderctl` process on it shares. Processes killed at a crash point
//! (`ORDERCTL_CRASH_AT`, aborted with no unwinding and no rollback sent) leave the
//! shop's books and the processor's apart until `orderctl reconcile`, on a SQLite file
//! and on PostgreSQL; processes authorizing at once get references of their own; and
//! the journal's path and the crash point are checked like any argument.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Child, Stdio};

use order_core::payment::{Balance, JournaledSimulator, PaymentProcessor as _, SimulatorConfig};
use serde_json::{Value, json};

use super::{Shop, one_line_error, run_in, text};

/// The processor's books as the journal at `path` holds them: the balance of
/// `reference` (`None` if the processor never made it) and the money captured in all.
fn books(path: &Path, reference: &str) -> (Option<Balance>, i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let processor = JournaledSimulator::open(path, SimulatorConfig::default())
            .await
            .expect("the journal opens");
        let balance = processor.balance(reference).await.ok();
        (balance, processor.simulator().total_captured())
    })
}

/// Runs `args` with `ORDERCTL_CRASH_AT=point` and asserts the process was aborted
/// (SIGABRT) rather than finishing.
fn killed(shop: &Shop, point: &str, args: &[&str]) {
    let out = shop
        .command(args)
        .env("ORDERCTL_CRASH_AT", point)
        .output()
        .expect("orderctl runs");
    assert_eq!(
        out.status.signal(),
        Some(6),
        "orderctl {args:?} was not aborted at {point}: {}; {}",
        out.status,
        text(&out.stderr)
    );
}

/// A confirmed order of two mugs (30.00); its id.
fn confirmed(shop: &Shop, email: &str) -> String {
    let id = shop.order(email, &["MUG:2"]).to_string();
    shop.ok(&["fire", &id, "confirm", "--as", "system"]);
    id
}

fn reconciled(
    settled: u64,
    voided: u64,
    completed: u64,
    refunded: u64,
) -> [(&'static str, u64); 4] {
    [
        ("authorizations_settled", settled),
        ("authorizations_voided", voided),
        ("captures_completed", completed),
        ("captures_refunded", refunded),
    ]
}

fn assert_reconciled(report: &Value, expected: [(&str, u64); 4]) {
    for (figure, n) in expected {
        assert_eq!(report[figure], json!(n), "{figure} in {report}");
    }
}

/// Killed after the processor captured and before `pay` committed: the shop still says
/// confirmed, the processor holds the money; `reconcile` fires `pay` again, whose
/// capture the processor replays; a second run changes nothing.
fn killed_after_the_capture(shop: &Shop) {
    let id = confirmed(shop, "ann@example.com");
    let authorized = shop.json(&["order", "authorize", &id]);
    let reference = authorized["payment"]["processor_ref"]
        .as_str()
        .expect("a reference")
        .to_owned();

    killed(shop, "captured", &["fire", &id, "pay", "--as", "system"]);
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "confirmed", "the shop never heard: {shown}");
    assert_eq!(shown["payments"][0]["state"], "authorized", "{shown}");
    let (balance, captured) = books(&shop.journal(), &reference);
    assert_eq!(balance.map(|b| b.captured_cents), Some(3000));
    assert_eq!(captured, 3000, "the processor captured");

    let report = shop.json(&["reconcile"]);
    assert_reconciled(&report, reconciled(0, 0, 1, 0));
    assert_eq!(report["checked"], 1, "{report}");
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "paid", "{shown}");
    assert_eq!(shown["payment_status"], "captured", "{shown}");
    assert_eq!(shown["payments"][0]["state"], "captured", "{shown}");
    assert_eq!(shop.json(&["verify"])["ok"], true);
    assert_eq!(books(&shop.journal(), &reference).1, 3000, "captured once");

    // Nothing is in doubt any more: the second run asks the processor nothing.
    let journal = std::fs::read(shop.journal()).expect("the journal");
    let again = shop.json(&["reconcile"]);
    assert_reconciled(&again, reconciled(0, 0, 0, 0));
    assert_eq!(shop.json(&["order", "show", &id]), shown);
    assert_eq!(std::fs::read(shop.journal()).expect("the journal"), journal);
    assert_eq!(
        shop.ok(&["reconcile"]),
        "reconcile: 0 payment(s) compared with the processor's books\n\
         authorizations: 0 settled, 0 voided; captures: 0 completed, 0 refunded\n"
    );
}

#[test]
fn a_process_killed_after_the_capture_is_reconciled_on_sqlite() {
    killed_after_the_capture(&Shop::stocked());
}

#[test]
fn a_process_killed_after_the_capture_is_reconciled_on_postgres() {
    killed_after_the_capture(&Shop::postgres().stock());
}

/// Killed after the processor authorized and before the answer was recorded: the
/// payment stays `pending`; `reconcile` asks again with its key and records the
/// authorization the processor made, which `pay` then captures.
fn killed_after_the_authorization(shop: &Shop) {
    let id = confirmed(shop, "ann@example.com");
    killed(shop, "authorized", &["order", "authorize", &id]);
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["payments"].as_array().map(Vec::len), Some(1));
    let payment = &shown["payments"][0];
    assert_eq!(
        payment["state"], "initiated",
        "the intent came first: {shown}"
    );
    assert_eq!(payment["processor_ref"], Value::Null, "{shown}");
    let refused = shop.fails(1, &["fire", &id, "pay", "--as", "system"]);
    assert!(refused.contains("payment_authorized"), "{refused}");

    let report = shop.json(&["reconcile"]);
    assert_reconciled(&report, reconciled(1, 0, 0, 0));
    let shown = shop.json(&["order", "show", &id]);
    let payment = &shown["payments"][0];
    assert_eq!(payment["state"], "authorized", "{shown}");
    assert_eq!(shown["payment_status"], "authorized", "{shown}");
    // The reference the processor gave the killed process: it authorized once.
    assert_eq!(payment["processor_ref"], "pay_000001", "{shown}");
    assert_eq!(books(&shop.journal(), "pay_000002").0, None);

    shop.ok(&["fire", &id, "pay", "--as", "system"]);
    let shown = shop.json(&["order", "show", &id]);
    assert_eq!(shown["state"], "paid", "{shown}");
    let (balance, captured) = books(&shop.journal(), "pay_000001");
    let balance = balance.expect("the processor knows the payment");
    assert_eq!(
        (balance.authorized_cents, balance.captured_cents),
        (3000, 3000)
    );
    assert_eq!(captured, 3000);
    assert_eq!(shop.json(&["verify"])["ok"], true);
    assert_reconciled(&shop.json(&["reconcile"]), reconciled(0, 0, 0, 0));
}

#[test]
fn a_process_killed_after_the_authorization_is_reconciled_on_sqlite() {
    killed_after_the_authorization(&Shop::stocked());
}

#[test]
fn a_process_killed_after_the_authorization_is_reconciled_on_postgres() {
    killed_after_the_authorization(&Shop::postgres().stock());
}

/// Four processes authorize four orders at once: the journal gives each its own
/// reference, as one processor would.
fn processes_authorizing_at_once_get_their_own_references(shop: &Shop) {
    let ids: Vec<String> = (0..4)
        .map(|n| confirmed(shop, &format!("c{n}@example.com")))
        .collect();
    let children: Vec<Child> = ids
        .iter()
        .map(|id| {
            shop.command(&["--json", "order", "authorize", id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("orderctl starts")
        })
        .collect();
    let mut references: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("orderctl ends");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(report["outcome"], "authorized", "{report}");
            report["payment"]["processor_ref"]
                .as_str()
                .expect("a reference")
                .to_owned()
        })
        .collect();
    references.sort();
    assert_eq!(
        references,
        ["pay_000001", "pay_000002", "pay_000003", "pay_000004"]
    );
    for id in &ids {
        shop.ok(&["fire", id, "pay", "--as", "system"]);
    }
    assert_eq!(books(&shop.journal(), "pay_000001").1, 4 * 3000);
    assert_eq!(shop.json(&["verify"])["ok"], true);
}

#[test]
fn processes_authorizing_at_once_share_the_journal_on_sqlite() {
    processes_authorizing_at_once_get_their_own_references(&Shop::stocked());
}

#[test]
fn processes_authorizing_at_once_share_the_journal_on_postgres() {
    processes_authorizing_at_once_get_their_own_references(&Shop::postgres().stock());
}

/// `--processor-journal` (or its environment variable) chooses the journal; the
/// default sits beside the database file, and an in-memory database's is temporary.
#[test]
fn the_journal_is_the_one_given_or_beside_the_database() {
    let shop = Shop::stocked();
    let id = confirmed(&shop, "ann@example.com");
    let given = shop.dir.path().join("books.jsonl");
    let given_text = given.display().to_string();
    shop.ok(&[
        "--processor-journal",
        &given_text,
        "order",
        "authorize",
        &id,
    ]);
    let default = std::fs::read_to_string(shop.journal()).expect("the default journal");
    assert_eq!(default, "", "nothing went to the default journal");
    assert_eq!(
        books(&given, "pay_000001").0.map(|b| b.authorized_cents),
        Some(3000)
    );
    // The default journal's processor never heard of the payment: reconciliation
    // leaves it as it is, and counts it.
    let report = shop.json(&["reconcile"]);
    assert_eq!(report["unknown"], json!(1), "{report}");
    assert_reconciled(&report, reconciled(0, 0, 0, 0));
    // The same books through the environment: the capture finds the authorization.
    let with_given = |args: &[&str]| {
        let out = shop
            .command(args)
            .env("ORDERCTL_PROCESSOR_JOURNAL", &given_text)
            .output()
            .expect("orderctl runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    with_given(&["fire", &id, "pay", "--as", "system"]);
    assert_eq!(books(&given, "pay_000001").1, 3000);
    let report: Value = serde_json::from_str(&with_given(&["--json", "reconcile"])).expect("JSON");
    assert_reconciled(&report, reconciled(0, 0, 0, 0));
    assert_eq!(std::fs::read_to_string(shop.journal()).expect("read"), "");

    let dir = tempfile::tempdir().expect("a folder");
    let out = run_in(
        dir.path(),
        &["--db", "sqlite::memory:", "--json", "reconcile"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_reconciled(&report, reconciled(0, 0, 0, 0));
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("listed").collect();
    assert!(
        left.is_empty(),
        "an in-memory database leaves no file: {left:?}"
    );
}

/// A journal that cannot be used, or a crash point the engine does not have: one
/// line; exit 2 for an argument to fix (before the database is created), 1 for a
/// corrupt journal. Neither variable is in `--help`; the journal's defaults are.
#[test]
fn bad_journals_and_crash_points_are_one_line_errors() {
    let shop = Shop::empty();
    let folder = shop.dir.path().display().to_string();
    assert_eq!(
        shop.fails(2, &["--processor-journal", &folder, "list"]),
        format!("orderctl: --processor-journal: `{folder}` is a folder, not a file")
    );
    let nowhere = shop.dir.path().join("missing").join("books.jsonl");
    let line = shop.fails(
        2,
        &[
            "--processor-journal",
            &nowhere.display().to_string(),
            "list",
        ],
    );
    assert!(line.contains("there is no folder"), "{line}");
    let out = shop
        .command(&["list"])
        .env("ORDERCTL_CRASH_AT", "shipped")
        .output()
        .expect("orderctl runs");
    assert_eq!(
        one_line_error(&out, 2, &["ORDERCTL_CRASH_AT"]),
        "orderctl: ORDERCTL_CRASH_AT: `shipped` is not a crash point; expected one of: \
         authorized, captured"
    );
    assert!(!shop.path().exists(), "usage errors create no database");

    std::fs::write(shop.journal(), "{\"call\":\"authorize\"}\n").expect("written");
    let line = shop.fails(1, &["list"]);
    assert!(
        line.contains("orders.db.processor.jsonl:1: not a processor journal entry"),
        "{line}"
    );

    let help = shop.ok(&["--help"]);
    for said in [
        "--processor-journal <PATH>",
        "ORDERCTL_PROCESSOR_JOURNAL",
        "orderctl-processor.jsonl",
        "FILE.processor.jsonl",
        "reconcile",
    ] {
        assert!(help.contains(said), "{said} in {help}");
    }
    for hidden in ["ORDERCTL_CRASH_AT", "ORDERCTL_NOW"] {
        assert!(!help.contains(hidden), "{hidden} in {help}");
    }
}
