//! Conformance checks: stock reservations and the inventory ledger.

use super::*;

pub(super) async fn reserve_is_conditional_and_never_oversells(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    let (_, b) = catalog(&*store).await;
    let first = new_order(&*store, "ann@example.com", &[("B", 3)]).await.id;
    let second = new_order(&*store, "bob@example.com", &[("B", 3)]).await.id;
    let mut tx = ok!(store.begin());
    assert!(ok!(tx.reserve(first, b.id, 3, at(1))));
    assert!(!ok!(tx.reserve(second, b.id, 3, at(1))), "2 left");
    assert!(ok!(tx.reserve(second, b.id, 2, at(1))));
    assert!(!ok!(tx.reserve(second, b.id, 1, at(1))), "none left");
    let locked = ok!(tx.lock_products(&[b.id]));
    assert_eq!((locked[0].on_hand, locked[0].reserved), (5, 5));
    assert_eq!(ok!(tx.reserved_by(first)), [(b.id, 3)]);
    assert_eq!(ok!(tx.reserved_by(second)), [(b.id, 2)]);
    ok!(tx.commit());
    assert_eq!(stock(&*store, "B").await, (5, 5));
    refused!(store, tx => tx.reserve(first, b.id, -1, at(2)), "a negative quantity");
    // The refused reservations wrote no ledger rows.
    assert_verified(&*store).await;
}

pub(super) async fn move_stock_applies_each_kind_with_its_ledger_row(
    store: Arc<dyn Store>,
    _raw: RawSql,
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

    for (product, kind, qty, what) in [
        (a.id, Movement::Release, 2, "releasing more than reserved"),
        (a.id, Movement::Ship, 2, "shipping more than reserved"),
        (a.id, Movement::Adjust, -8, "on hand below reserved"),
        (a.id, Movement::Reserve, 8, "reserving more than available"),
        (a.id, Movement::Restock, -1, "a negative restock"),
        (ProductId(999_999), Movement::Restock, 1, "no such product"),
    ] {
        refused!(store, tx => tx.move_stock(id, product, kind, qty, at(9)), what);
    }
    assert_eq!(stock(&*store, "A").await, (8, 1));
    assert_verified(&*store).await;
}

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

pub(super) async fn reserved_never_exceeds_on_hand(store: Arc<dyn Store>, raw: RawSql) {
    ok!(store.add_product("P", "Plum", 100, 3));
    for sql in [
        "UPDATE products SET reserved = on_hand + 1 WHERE sku = 'P'",
        "UPDATE products SET reserved = -1 WHERE sku = 'P'",
        "UPDATE products SET on_hand = -1 WHERE sku = 'P'",
    ] {
        assert!(raw.exec(sql).await.is_err(), "the database ran `{sql}`");
    }
    // The hook does run statements.
    ok!(raw.exec("UPDATE products SET name = 'Plum!' WHERE sku = 'P'"));
    let plum = ok!(store.product("P")).expect("the product exists");
    assert_eq!((plum.name.as_str(), plum.on_hand), ("Plum!", 3));
    assert_eq!(plum.reserved, 0);
    assert_verified(&*store).await;
}
