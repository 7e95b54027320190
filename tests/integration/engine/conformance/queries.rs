//! Conformance checks: order queries (`list` with each filter and all of them at once)
//! and the counts per state and per status.

use super::*;

/// Every `OrderQuery` filter selects alike alone and all together, and the counts follow.
pub(super) async fn queries_combine_every_filter(store: Arc<dyn Store>, raw: RawSql) {
    catalog(&*store).await;
    let a1 = new_order(&*store, "ann@example.com", &[("A", 1)]).await.id;
    let a2 = new_order(&*store, "ann@example.com", &[("A", 1)]).await.id;
    let b1 = new_order(&*store, "bob@example.com", &[("B", 1)]).await.id;
    let b2 = new_order(&*store, "bob@example.com", &[("A", 1)]).await.id;
    step_at(&*store, a2, (Confirm, Confirmed), 100).await;
    step_at(&*store, b1, (Confirm, Confirmed), 200).await;
    step_at(&*store, b1, (Cancel, Cancelled), 300).await;

    let list = async |query: OrderQuery| -> Vec<OrderId> {
        let orders = ok!(store.list(&query));
        orders.into_iter().map(|o| o.id).collect()
    };
    let all = OrderQuery::new;
    assert_eq!(list(all()).await, [a1, a2, b1, b2]);
    assert_eq!(list(all().in_states(&[Pending])).await, [a1, b2]);
    let confirmed_or_cancelled = all().in_states(&[Confirmed, Cancelled]);
    assert_eq!(list(confirmed_or_cancelled).await, [a2, b1]);
    assert_eq!(list(all().not_in_states(&[Pending])).await, [a2, b1]);
    let neither = all().not_in_states(&[Pending, Cancelled]);
    assert_eq!(list(neither).await, [a2]);
    assert_eq!(list(all().customer("bob@example.com")).await, [b1, b2]);
    assert_eq!(list(all().customer("nobody@example.com")).await, []);
    // Ranges include their start and exclude their end.
    let updated = all().updated_between(at(100), at(300));
    assert_eq!(list(updated).await, [a2]);
    let updated = all().updated_between(at(100), at(301));
    assert_eq!(list(updated).await, [a2, b1]);
    assert_eq!(list(all().created_between(at(0), at(1))).await.len(), 4);
    assert_eq!(list(all().created_between(at(1), at(2))).await, []);
    let unpaid = all().payment_status(PaymentStatus::None);
    assert_eq!(list(unpaid).await.len(), 4);
    let shipped = all().fulfillment_status(FulfillmentStatus::Shipped);
    assert_eq!(list(shipped).await, []);
    assert_eq!(list(all().after(a2).limit(1)).await, [b1]);
    assert_eq!(list(all().limit(0)).await, []);
    let ann = all().customer("ann@example.com");
    let ann_unconfirmed = ann.not_in_states(&[Confirmed]).after(OrderId(0));
    assert_eq!(list(ann_unconfirmed).await, [a1]);
    // Every filter at once.
    let every = all()
        .in_states(&[Cancelled, Pending])
        .not_in_states(&[Pending])
        .customer("bob@example.com")
        .created_between(at(0), at(1))
        .updated_between(at(300), at(301))
        .payment_status(PaymentStatus::None)
        .fulfillment_status(FulfillmentStatus::Unfulfilled)
        .after(a2)
        .limit(5);
    assert_eq!(list(every).await, [b1]);
    assert_invalid(store.list(&all().limit(-1)).await, "a negative limit");

    let by_state = [(Pending, 2), (Confirmed, 1), (Cancelled, 1)];
    assert_eq!(ok!(store.count_by_state(&all())), by_state);
    // The counts ignore the query's page.
    let ann_page = all().customer("ann@example.com").limit(1);
    let ann_states = [(Pending, 1), (Confirmed, 1)];
    assert_eq!(ok!(store.count_by_state(&ann_page)), ann_states);

    let unfulfilled = [("unfulfilled".to_owned(), 4)];
    let (payment, fulfillment) = ok!(store.count_by_status());
    assert_eq!(payment, [("none".to_owned(), 4)]);
    assert_eq!(fulfillment, unfulfilled);
    let sql = format!("UPDATE orders SET payment_status = 'partially_refunded' WHERE id = {a1}");
    ok!(raw.exec(sql));
    let (payment, fulfillment) = ok!(store.count_by_status());
    // In byte order, whatever the database's collation.
    let expected = [("none".to_owned(), 3), ("partially_refunded".to_owned(), 1)];
    assert_eq!(payment, expected);
    assert_eq!(fulfillment, unfulfilled);
}
