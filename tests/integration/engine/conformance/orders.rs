//! Conformance checks: migrations, the catalog, orders and transactions.

use super::*;

/// Migrating again changes nothing and keeps the rows.
pub(super) async fn migrate_is_idempotent(store: Arc<dyn Store>, _raw: RawSql) {
    ok!(store.migrate());
    let product = ok!(store.add_product("A", "Apple", 250, 10));
    ok!(store.migrate());
    assert_eq!(ok!(store.products()), [product]);
    assert_verified(&*store).await;
}

/// Products and staff round-trip, and what neither may be is refused.
pub(super) async fn catalog_and_staff(store: Arc<dyn Store>, _raw: RawSql) {
    assert_eq!(ok!(store.products()), []);
    let (a, b) = catalog(&*store).await;
    assert_eq!(
        (a.sku.as_str(), a.name.as_str(), a.price_cents),
        ("A", "Apple", 250)
    );
    assert_eq!(
        [a.on_hand, a.reserved, b.on_hand, b.reserved],
        [10, 0, 5, 0]
    );
    assert!(a.id < b.id);
    assert_eq!(ok!(store.product("A")), Some(a.clone()));
    assert_eq!(ok!(store.product("nope")), None);
    assert_eq!(ok!(store.products()), [a.clone(), b.clone()]);
    assert_invalid(store.add_product("A", "X", 1, 1).await, "a repeated SKU");
    assert_invalid(store.add_product("N", "X", 1, -1).await, "negative stock");
    assert_invalid(store.add_product("N", "X", -1, 1).await, "a negative price");
    assert_eq!(ok!(store.products()), [a, b]);
    // The initial stock is an `adjust` movement: the ledger sums to the counters.
    assert_verified(&*store).await;

    assert_eq!(ok!(store.staff("sam")), None);
    let sam = ok!(store.add_staff("sam", ActorKind::Support));
    assert_eq!((sam.name.as_str(), sam.role), ("sam", ActorKind::Support));
    assert_eq!(ok!(store.staff("sam")), Some(sam));
    ok!(store.add_staff("ada", ActorKind::Admin));
    ok!(store.add_staff("sam", ActorKind::Admin));
    for name in ["sam", "ada"] {
        let staff = ok!(store.staff(name)).expect("stored");
        assert_eq!(staff.role, ActorKind::Admin, "{name}");
    }
    let customer = store.add_staff("cleo", ActorKind::Customer).await;
    assert_invalid(customer, "a customer is not a staff role");
    assert_eq!(ok!(store.staff("cleo")), None);
    let carrier = store.add_staff("cat", ActorKind::Carrier).await;
    assert_invalid(carrier, "a carrier is not a staff role");
    assert_eq!(ok!(store.staff("cat")), None);
}

/// New orders are priced, numbered and totalled; refused ones leave nothing, not even a customer.
pub(super) async fn create_order_prices_numbers_and_totals(store: Arc<dyn Store>, raw: RawSql) {
    let (a, b) = catalog(&*store).await;
    let mut new = NewOrder::new("ann@example.com", &[("A", 3), ("B", 1)]);
    new.shipping_address = Some("1 Main St".into());
    new.currency = "USD".into();
    let first = ok!(store.create_order(&new, Pending, at(1)));
    assert_eq!((first.state, first.version), (Pending, 0));
    assert_eq!(first.parent, None);
    assert_eq!((first.currency.as_str(), first.total_cents), ("USD", 1_750));
    assert_eq!(first.payment_status, PaymentStatus::None);
    assert_eq!(first.fulfillment_status, FulfillmentStatus::Unfulfilled);
    assert_eq!(first.shipping_address.as_deref(), Some("1 Main St"));
    assert_eq!(first.customer_email, "ann@example.com");
    assert_eq!(first.number, format!("ORD-{:06}", first.id.0));
    assert_eq!((first.created_at, first.updated_at), (at(1), at(1)));
    assert_eq!(ok!(store.order(first.id)), Some(first.clone()));
    let items = ok!(store.items(first.id));
    let lines: Vec<_> = items.iter().map(line).collect();
    assert_eq!(lines, [(1, a.id, "A", 3, 250), (2, b.id, "B", 1, 1_000)]);
    assert!(
        items
            .iter()
            .all(|i| i.order == first.id && i.qty_shipped == 0)
    );
    assert!(items.iter().all(|i| i.qty_returned == 0));

    // One customer per email.
    let second = new_order(&*store, "ann@example.com", &[("B", 2)]).await;
    let other = new_order(&*store, "bob@example.com", &[("A", 1)]).await;
    assert_eq!(second.customer, first.customer);
    assert_ne!(other.customer, first.customer);
    assert!(first.id < second.id && second.id < other.id);
    assert_ne!(first.number, second.number);
    // The numbers of a new database's orders start at 1.
    let numbers = [first.number.as_str(), second.number.as_str()];
    assert_eq!(numbers, ["ORD-000001", "ORD-000002"]);
    assert_eq!(second.total_cents, 2_000);

    // Refusals create nothing.
    for (items, words, what) in [
        (
            vec![("A", 1), ("NOPE", 1)],
            "unknown product `NOPE`",
            "an unknown SKU",
        ),
        (vec![("A", 0)], "must be positive", "a zero quantity"),
        (
            vec![("B", 1), ("A", -2)],
            "must be positive",
            "a negative quantity",
        ),
        (vec![], "at least one line", "no lines"),
    ] {
        let new = NewOrder::new("cat@example.com", &items);
        assert_invalid_saying(store.create_order(&new, Pending, at(2)).await, words, what);
    }
    // Not even the new customer of a refused order stays.
    assert_eq!(raw.count("SELECT COUNT(*) FROM customers").await, 2);
    assert_eq!(ok!(store.list(&OrderQuery::new())).len(), 3);
    let cat = OrderQuery::new().customer("cat@example.com");
    assert_eq!(ok!(store.list(&cat)), []);
    assert_eq!(ok!(store.order(OrderId(999_999))), None);
    assert_eq!(stock(&*store, "A").await, (10, 0), "nothing reserved");
    assert_verified(&*store).await;
}

/// Neither a dropped nor a rolled-back transaction leaves any of its writes.
pub(super) async fn a_dropped_or_rolled_back_transaction_leaves_nothing(
    store: Arc<dyn Store>,
    raw: RawSql,
) {
    let (a, _) = catalog(&*store).await;
    let order = new_order(&*store, "ann@example.com", &[("A", 2)]).await;
    let id = order.id;
    let payload = json!({"n": 1});
    let message = message(id, "k", "k", &payload, 5);
    let payment = payment(id, 500, "p");
    for rollback in [false, true] {
        let mut tx = ok!(store.begin());
        let mut moved = ok!(tx.lock_order(id)).expect("the order exists");
        assert_eq!(moved, order);
        moved.state = Confirmed;
        assert!(ok!(tx.update_order(&moved, at(5))));
        ok!(tx.append_transition(&row(id, 1, Confirm, Pending, Confirmed)));
        ok!(tx.enqueue(&message));
        assert!(ok!(tx.reserve(id, a.id, 2, at(5))));
        ok!(tx.record_command("cmd-1", id, "{}", at(5)));
        ok!(tx.insert_payment(&payment));
        ok!(tx.add_note(id, "sam", "hello", at(5)));
        if rollback {
            ok!(tx.rollback());
        } else {
            drop(tx);
        }
        assert_eq!(ok!(store.order(id)), Some(order.clone()));
        assert_eq!(ok!(store.history(id)), []);
        assert_eq!(ok!(store.messages(id)), []);
        assert_eq!(ok!(store.payments(id)), []);
        assert_eq!(stock(&*store, "A").await, (10, 0));
        let mut tx = ok!(store.begin());
        assert_eq!(ok!(tx.command_outcome("cmd-1")), None);
        assert_eq!(ok!(tx.reserved_by(id)), []);
        assert_eq!(ok!(tx.last_seq(id)), 0);
        ok!(tx.rollback());
        // Notes have no reader in the store's API.
        assert_eq!(raw.count("SELECT COUNT(*) FROM order_notes").await, 0);
    }
    assert_verified(&*store).await;
}

/// A commit persists, and `update_order` writes only over the version it was read at.
pub(super) async fn commit_persists_and_update_order_compares_and_sets(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let order = ann_order(&*store).await;
    let mut tx = ok!(store.begin());
    let mut changed = ok!(tx.lock_order(order.id)).expect("the order exists");
    changed.state = Confirmed;
    changed.payment_status = PaymentStatus::Authorized;
    changed.fulfillment_status = FulfillmentStatus::Shipped;
    changed.shipping_address = Some("2 Side St".into());
    changed.total_cents = 999;
    assert!(ok!(tx.update_order(&changed, at(3))));
    assert!(!ok!(tx.update_order(&changed, at(4))), "a stale version");
    ok!(tx.append_transition(&row(order.id, 1, Confirm, Pending, Confirmed)));
    ok!(tx.commit());
    let mut stored = ok!(store.order(order.id)).expect("the order exists");
    (changed.version, changed.updated_at) = (1, at(3));
    assert_eq!(stored, changed);
    assert_eq!(stored.created_at, order.created_at);

    let mut tx = ok!(store.begin());
    assert!(!ok!(tx.update_order(&order, at(5))), "version 0 is stale");
    let mut missing = stored.clone();
    missing.id = OrderId(999_999);
    assert!(!ok!(tx.update_order(&missing, at(5))), "no such order");
    assert_eq!(ok!(tx.lock_order(missing.id)), None);
    stored.payment_status = PaymentStatus::None;
    stored.fulfillment_status = FulfillmentStatus::Unfulfilled;
    assert!(ok!(tx.update_order(&stored, at(6))));
    ok!(tx.commit());
    (stored.version, stored.updated_at) = (2, at(6));
    assert_eq!(ok!(store.order(order.id)), Some(stored));
    assert_verified(&*store).await;
}

/// `transition_reads` agrees with the calls it stands for, whether or not the adapter
/// reads the stock with the lines.
pub(super) async fn transition_reads_agree_with_the_calls_they_replace(
    store: Arc<dyn Store>,
    _raw: RawSql,
) {
    catalog(&*store).await;
    let id = new_order(&*store, "ann@example.com", &[("B", 1), ("A", 2), ("B", 3)])
        .await
        .id;
    let mut tx = ok!(store.begin());
    ok!(tx.lock_order(id)).expect("the order exists");
    ok!(tx.append_transition(&row(id, 1, Confirm, Pending, Confirmed)));
    let reads = ok!(tx.transition_reads(id));
    assert_eq!(reads.items, ok!(tx.items(id)));
    assert_eq!(reads.items.len(), 3);
    assert_eq!(reads.last_seq, 1);
    if let Some(stock) = &reads.stock {
        let mut ids: Vec<_> = reads.items.iter().map(|i| i.product).collect();
        ids.sort();
        ids.dedup();
        let mut read = stock.clone();
        read.sort_by_key(|p| p.id);
        assert_eq!(read, ok!(tx.stock(&ids)));
    }
    ok!(tx.rollback());

    // No lines (here, no order) still gives a row to read the sequence number from.
    let mut tx = ok!(store.begin());
    let reads = ok!(tx.transition_reads(OrderId(id.0 + 1_000)));
    assert_eq!((reads.items.len(), reads.last_seq), (0, 0));
    assert_eq!(reads.stock.map(|s| s.len()).unwrap_or(0), 0);
    ok!(tx.rollback());
}

/// A split child order takes over its parent's lines; each order's entry into a state is found.
pub(super) async fn a_split_moves_lines_into_a_child_order(store: Arc<dyn Store>, _raw: RawSql) {
    let (a, b) = catalog(&*store).await;
    let id = new_order(&*store, "ann@example.com", &[("A", 2), ("B", 1)])
        .await
        .id;
    let parent = step_at(&*store, id, (Confirm, Confirmed), 10).await;
    let items = ok!(store.items(id));
    let mut tx = ok!(store.begin());
    ok!(tx.insert_shipment(id, "dhl", Some("T-1"), &[(items[0].id, 1)], at(20)));
    let child = ok!(tx.insert_child_order(&parent, Confirmed, at(40)));
    assert_eq!((child.parent, child.state), (Some(id), Confirmed));
    assert_eq!(
        (child.customer, child.total_cents, child.version),
        (parent.customer, 0, 0)
    );
    assert_eq!(child.number, format!("ORD-{:06}", child.id.0));
    ok!(tx.replace_items(child.id, &[(a.id, 1, 250)]));
    ok!(tx.move_items(&[items[1].id], child.id));
    let lines: Vec<(i64, String)> = ok!(tx.items(child.id))
        .into_iter()
        .map(|i| (i.line_no, i.sku))
        .collect();
    assert_eq!(lines, [(1, "A".to_owned()), (2, "B".to_owned())]);
    assert_eq!(ok!(tx.items(id)).len(), 1);
    // Refusals leave the transaction usable.
    let unknown = tx.move_items(&[ItemId(999_999)], child.id).await;
    assert_invalid(unknown, "moving a line that does not exist");
    let shipped = tx.replace_items(id, &[(b.id, 1, 1_000)]).await;
    assert_invalid(shipped, "replacing a shipped line away");

    // When each order entered its state: by a transition, or at creation.
    for (order, state, entered) in [
        (id, Confirmed, Some(at(10))),
        (id, Pending, Some(at(0))),
        (id, Paid, None),
        (child.id, Confirmed, Some(at(40))),
        (OrderId(999_999), Pending, None),
    ] {
        assert_eq!(ok!(tx.entered_at(order, state)), entered, "{order} {state}");
    }
    ok!(tx.commit());
    assert_eq!(ok!(store.shipments(id)).len(), 1);
    assert_eq!(ok!(store.items(child.id)).len(), 2);
    assert_eq!(ok!(store.order(OrderId(999_999))), None);
    assert_verified(&*store).await;
}
