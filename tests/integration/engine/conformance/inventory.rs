//! Conformance checks: stock reservations and the inventory ledger.

use super::*;

/// A reservation takes all it asks for or nothing, and only what it takes is in the ledger.
pub(super) async fn reserve_is_conditional_and_never_oversells(store: Arc<dyn Store>, raw: RawSql) {
    let (a, b) = catalog(&*store).await;
    let first = new_order(&*store, "ann@example.com", &[("B", 3)]).await.id;
    let second = new_order(&*store, "bob@example.com", &[("B", 3)]).await.id;
    let mut tx = ok!(store.begin());
    assert!(ok!(tx.reserve(first, b.id, 3, at(1))));
    assert!(!ok!(tx.reserve(second, b.id, 3, at(1))), "2 left");
    assert!(ok!(tx.reserve(second, b.id, 2, at(1))));
    assert!(!ok!(tx.reserve(second, b.id, 1, at(1))), "none left");
    assert!(
        ok!(tx.reserve(second, b.id, 0, at(1))),
        "nothing is always there"
    );
    // A refusal leaves the transaction usable.
    let negative = tx.reserve(second, b.id, -1, at(1)).await;
    assert_invalid(negative, "a negative quantity in the transaction");
    let locked = ok!(tx.lock_products(&[a.id, b.id]));
    let counters: Vec<_> = locked
        .iter()
        .map(|p| (p.id, p.on_hand, p.reserved))
        .collect();
    assert_eq!(counters, [(a.id, 10, 0), (b.id, 5, 5)]);
    assert_eq!(ok!(tx.reserved_by(first)), [(b.id, 3)]);
    assert_eq!(ok!(tx.reserved_by(second)), [(b.id, 2)]);
    ok!(tx.commit());
    assert_eq!(stock(&*store, "B").await, (5, 5));
    refused!(store, tx => tx.reserve(first, b.id, -1, at(2)), "a negative quantity");
    // Neither the refused reservations nor the empty one wrote a ledger row.
    let reservations = "SELECT COUNT(*) FROM inventory_movements WHERE kind = 'reserve'";
    assert_eq!(raw.count(reservations).await, 2);
    assert_verified(&*store).await;
}

/// Each movement kind moves the counters with a ledger row; refusals in one transaction do not.
pub(super) async fn move_stock_applies_each_kind_with_its_ledger_row(
    store: Arc<dyn Store>,
    raw: RawSql,
) {
    let (a, b) = catalog(&*store).await;
    let id = new_order(&*store, "ann@x.com", &[("A", 4), ("B", 1)])
        .await
        .id;
    let mut tx = ok!(store.begin());
    for (minute, (product, kind, qty, counters)) in (1..).zip([
        (a.id, Movement::Reserve, 4, (10, 4)),
        (a.id, Movement::Release, 1, (10, 3)),
        (a.id, Movement::Ship, 2, (8, 1)),
        (a.id, Movement::Restock, 2, (10, 1)),
        (a.id, Movement::Adjust, -3, (7, 1)),
        (a.id, Movement::Adjust, 1, (8, 1)),
        (b.id, Movement::Reserve, 1, (5, 1)),
        (b.id, Movement::Release, 1, (5, 0)),
    ]) {
        ok!(tx.move_stock(id, product, kind, qty, at(minute)));
        let locked = &ok!(tx.lock_products(&[product]))[0];
        let what = format!("{kind:?} {qty}");
        assert_eq!((locked.on_hand, locked.reserved), counters, "{what}");
    }
    assert_eq!(ok!(tx.reserved_by(id)), [(a.id, 1)]);
    assert_eq!(ok!(tx.restocked_by(id)), [(a.id, 2)]);
    ok!(tx.commit());
    assert_eq!(stock(&*store, "A").await, (8, 1));
    // Every movement wrote its ledger row: the ledger sums to the counters.
    assert_verified(&*store).await;

    // A broken counter is refused in the database's own words.
    use Movement::{Adjust, Release, Reserve, Restock, Ship};
    let broken = raw.check_refusal;
    let mut tx = ok!(store.begin());
    for (product, kind, qty, words, what) in [
        (a.id, Release, 2, broken, "releasing more than reserved"),
        (a.id, Ship, 2, broken, "shipping more than reserved"),
        (a.id, Adjust, -8, broken, "on hand below reserved"),
        (a.id, Reserve, 8, "", "reserving more than available"),
        (a.id, Restock, -1, "", "a negative restock"),
        (a.id, Ship, -1, "", "a negative shipment"),
        (ProductId(999_999), Restock, 1, "", "no such product"),
    ] {
        let refused = tx.move_stock(id, product, kind, qty, at(9)).await;
        assert_invalid_saying(refused, words, what);
    }
    // The transaction goes on after every refusal.
    ok!(tx.move_stock(id, a.id, Release, 0, at(10)));
    ok!(tx.move_stock(id, a.id, Reserve, 1, at(10)));
    ok!(tx.commit());
    assert_eq!(stock(&*store, "A").await, (8, 2));
    assert_verified(&*store).await;
}

/// `lock_products` returns the products it finds, in id order.
pub(super) async fn lock_products_returns_them_in_id_order(store: Arc<dyn Store>, _raw: RawSql) {
    let mut all = Vec::new();
    for sku in ["X", "Y", "Z"] {
        all.push(ok!(store.add_product(sku, sku, 100, 1)));
    }
    let ids: Vec<ProductId> = all.iter().map(|p| p.id).collect();
    let mut tx = ok!(store.begin());
    assert_eq!(ok!(tx.lock_products(&ids)), all);
    let ends = ok!(tx.lock_products(&[ids[0], ids[2]]));
    assert_eq!(ends, [all[0].clone(), all[2].clone()]);
    assert_eq!(ok!(tx.lock_products(&[])), []);
    let known = ok!(tx.lock_products(&[ids[1], ProductId(999_999)]));
    assert_eq!(known, [all[1].clone()]);
    ok!(tx.rollback());
}

/// CHECK constraints keep the counters possible and each ledger row's deltas to its kind.
pub(super) async fn reserved_never_exceeds_on_hand(store: Arc<dyn Store>, raw: RawSql) {
    ok!(store.add_product("P", "Plum", 100, 3));
    for sql in [
        "UPDATE products SET reserved = on_hand + 1 WHERE sku = 'P'",
        "UPDATE products SET reserved = -1 WHERE sku = 'P'",
        "UPDATE products SET on_hand = -1 WHERE sku = 'P'",
        // A reservation never changes what is on hand.
        "INSERT INTO inventory_movements (product_id, kind, delta_on_hand, delta_reserved, \
             created_at) \
         VALUES ((SELECT id FROM products WHERE sku = 'P'), 'reserve', 1, 1, \
             '2026-03-02T09:00:00Z')",
    ] {
        raw.refuses(sql, raw.check_refusal).await;
    }
    // The hook does run statements.
    ok!(raw.exec("UPDATE products SET name = 'Plum!' WHERE sku = 'P'"));
    let plum = ok!(store.product("P")).expect("the product exists");
    assert_eq!((plum.name.as_str(), plum.on_hand), ("Plum!", 3));
    assert_eq!(plum.reserved, 0);
    assert_verified(&*store).await;
}

/// The stock ledger refuses UPDATE and DELETE, in words that name it.
pub(super) async fn the_inventory_ledger_is_append_only(store: Arc<dyn Store>, raw: RawSql) {
    let (a, _) = catalog(&*store).await;
    let id = ann_order(&*store).await.id;
    let mut tx = ok!(store.begin());
    assert!(ok!(tx.reserve(id, a.id, 1, at(1))));
    ok!(tx.commit());
    let rows = "SELECT COUNT(*) FROM inventory_movements";
    assert_eq!(
        raw.count(rows).await,
        3,
        "two initial stocks and a reservation"
    );
    for sql in [
        "UPDATE inventory_movements SET delta_on_hand = 0".to_owned(),
        format!("UPDATE inventory_movements SET order_id = NULL WHERE order_id = {id}"),
        format!("DELETE FROM inventory_movements WHERE order_id = {id}"),
        "DELETE FROM inventory_movements".to_owned(),
    ] {
        raw.refuses(&sql, "inventory_movements is append-only")
            .await;
    }
    assert_eq!(raw.count(rows).await, 3);
    assert_eq!(stock(&*store, "A").await, (10, 1));
    assert_verified(&*store).await;
}
