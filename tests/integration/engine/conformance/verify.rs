//! Conformance checks: `verify` on consistent data and on data broken on purpose.

use super::*;

/// `verify` finds nothing wrong with data the store wrote.
pub(super) async fn verify_is_clean_on_consistent_data(store: Arc<dyn Store>, _raw: RawSql) {
    assert_verified(&*store).await;
    let (a, b) = catalog(&*store).await;
    let id = new_order(&*store, "ann@x.com", &[("A", 2), ("B", 1)])
        .await
        .id;
    let mut tx = ok!(store.begin());
    ok!(tx.lock_products(&[a.id, b.id]));
    assert!(ok!(tx.reserve(id, a.id, 2, at(1))));
    assert!(ok!(tx.reserve(id, b.id, 1, at(1))));
    ok!(tx.commit());
    walk(&*store, id, &[(Confirm, Confirmed)]).await;
    new_order(&*store, "bob@example.com", &[("B", 1)]).await;
    assert_verified(&*store).await;
}

/// `verify` names a product whose counter the ledger does not add up to.
pub(super) async fn verify_reports_a_tampered_product_counter(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    ok!(store.add_product("TAMPERED-SKU", "Tampered", 100, 4));
    ok!(raw.exec("UPDATE products SET on_hand = 9 WHERE sku = 'TAMPERED-SKU'"));
    let findings = ok!(store.verify());
    assert_eq!(checks(&findings), ["stock_matches_ledger"], "{findings:#?}");
    assert!(findings[0].detail.contains("TAMPERED-SKU"), "{findings:?}");
}

/// `verify` names a gap in an order's trail, and a state that is not where the trail ends.
pub(super) async fn verify_reports_a_broken_audit_sequence(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    let mut orders = Vec::new();
    for email in ["ann@example.com", "bob@example.com", "cat@example.com"] {
        let id = new_order(&*store, email, &[("A", 1)]).await.id;
        walk(&*store, id, &[(Confirm, Confirmed), (Cancel, Cancelled)]).await;
        orders.push(id);
    }
    assert_verified(&*store).await;
    raw.lift_audit_guard().await;
    let broken = orders[2];
    let sql = format!("UPDATE order_transitions SET seq = 5 WHERE order_id = {broken} AND seq = 2");
    ok!(raw.exec(sql));
    let findings = ok!(store.verify());
    assert_eq!(checks(&findings), ["audit_sequence"], "{findings:#?}");
    let named = findings[0].detail.contains(&broken.to_string());
    assert!(named, "{findings:?}");

    // And an order whose state disagrees with where its trail ends.
    let first = orders[0];
    ok!(raw.exec(format!(
        "UPDATE orders SET state = 'paid' WHERE id = {first}"
    )));
    let findings = ok!(store.verify());
    let mut found = checks(&findings);
    found.sort_unstable();
    assert_eq!(found, ["audit_sequence", "state_matches_audit"]);
}

/// `verify` reports a tampered state and counter, a trailless move and an unheld reservation.
pub(super) async fn verify_reports_tampered_states_counters_and_reservations(
    store: Arc<dyn Store>,
    raw: RawSql,
) {
    let (a, _) = catalog(&*store).await;
    let id = new_order(&*store, "ann@example.com", &[("A", 2)]).await.id;
    let mut tx = ok!(store.begin());
    assert!(ok!(tx.reserve(id, a.id, 2, at(1))));
    ok!(tx.commit());
    walk(&*store, id, &[(Confirm, Confirmed)]).await;
    assert_verified(&*store).await;

    ok!(raw.exec("UPDATE products SET on_hand = on_hand + 5 WHERE sku = 'A'"));
    ok!(raw.exec(format!("UPDATE orders SET state = 'paid' WHERE id = {id}")));
    let findings = ok!(store.verify());
    let found = checks(&findings);
    assert_eq!(
        found,
        ["state_matches_audit", "stock_matches_ledger"],
        "{findings:#?}"
    );
    assert!(findings[1].detail.contains("`A`"), "{}", findings[1].detail);

    // An order without an audit trail must be in the initial state.
    let lonely = new_order(&*store, "bob@example.com", &[("B", 1)]).await.id;
    ok!(raw.exec(format!(
        "UPDATE orders SET state = 'shipped' WHERE id = {lonely}"
    )));
    let findings = ok!(store.verify());
    let trailless = |f: &Finding| {
        f.check == "state_matches_audit" && f.detail.contains("without any audit row")
    };
    assert!(findings.iter().any(trailless), "{findings:#?}");

    // Reservations nobody holds, with the ledger's guard lifted.
    raw.lift_ledger_guard().await;
    ok!(raw.exec("UPDATE inventory_movements SET order_id = NULL WHERE kind = 'reserve'"));
    let findings = ok!(store.verify());
    let found = checks(&findings);
    assert!(
        found.contains(&"reservations_match_orders"),
        "{findings:#?}"
    );
}
