//! Queries and bulk operations through the engine: `Store::list` with each
//! `OrderQuery` field alone and combined, keyset pagination, the counts, the index
//! behind the state query, and `Engine::bulk` over ids and queries.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use order_core::bulk::{BulkOptions, BulkReport, BulkTarget};
use order_core::order::State::{
    self, Cancelled, Confirmed, Delivered, Paid, Pending, Processing, Refunded, Returned, Shipped,
};
use order_core::order::{Event, Reason};
use order_core::payment::SimulatorConfig;
use order_core::{
    Actor, Command, FulfillmentStatus, NewOrder, OrderId, OrderQuery, Outcome, PaymentStatus,
    SqliteStore,
};

use super::harness::{self, CUSTOMER, SUPPORT, Shop};

const BOB: &str = "bob@example.com";

/// The states `Shop::order_in` brings Ann's orders into, in creation order.
const STATES: [State; 9] = [
    Pending, Confirmed, Paid, Processing, Shipped, Delivered, Cancelled, Refunded, Returned,
];

/// `minute` minutes into the shop's business hours.
fn at(minute: i64) -> DateTime<Utc> {
    harness::business_hours() + TimeDelta::minutes(minute)
}

/// Half a minute after `minute`: between two creations.
fn after(minute: i64) -> DateTime<Utc> {
    at(minute) + TimeDelta::seconds(30)
}

/// A shop on an in-memory database, and its adapter for raw SQL.
async fn shop() -> (Shop, SqliteStore) {
    let store = SqliteStore::connect("sqlite::memory:").await;
    let store = store.expect("the database opens");
    let config = SimulatorConfig::default();
    let shop = Shop::with_store(Arc::new(store.clone()), None, config).await;
    (shop, store)
}

/// Ann's orders, one per state of [`STATES`], created at minutes 0 to 8; Bob's, a
/// pending one created at minute 9 and a confirmed one at minute 10. At minute 60 Ann's
/// confirmed order gets a new address: it is the only one updated since minute 10.
#[derive(Debug)]
struct Orders {
    ann: Vec<OrderId>,
    bob: [OrderId; 2],
}

impl Orders {
    async fn create(shop: &Shop) -> Orders {
        let mut ann = Vec::new();
        for (minute, state) in (0..).zip(STATES) {
            shop.clock.set(at(minute));
            ann.push(shop.order_in(state).await);
        }
        let mut bob = Vec::new();
        for minute in [9, 10] {
            shop.clock.set(at(minute));
            let new = NewOrder::new(BOB, &[("WIDGET", 1)]);
            bob.push(shop.engine.create_order(&new).await.expect("created").id);
        }
        shop.fire(bob[1], Event::Confirm, Actor::system()).await;
        shop.clock.set(at(60));
        let moved = shop.engine.change_address(ann[1], "2 Side St").await;
        moved.expect("the address changes");
        Orders {
            ann,
            bob: [bob[0], bob[1]],
        }
    }

    /// Ann's orders in `states`, in id order.
    fn ann(&self, states: &[State]) -> Vec<OrderId> {
        let pairs = STATES.iter().zip(&self.ann);
        pairs
            .filter(|(s, _)| states.contains(s))
            .map(|(_, id)| *id)
            .collect()
    }

    fn all(&self) -> Vec<OrderId> {
        let mut all = self.ann.clone();
        all.extend(self.bob);
        all
    }
}

async fn ids(shop: &Shop, query: OrderQuery) -> Vec<OrderId> {
    let orders = shop.store.list(&query).await.expect("listed");
    orders.iter().map(|o| o.id).collect()
}

#[tokio::test]
async fn each_query_field_alone_narrows_the_list() {
    let (shop, _) = shop().await;
    let o = Orders::create(&shop).await;
    let [bob_pending, bob_confirmed] = o.bob;
    let q = OrderQuery::new;
    assert_eq!(ids(&shop, q()).await, o.all(), "no field: every order");

    let pending = [o.ann(&[Pending]), vec![bob_pending]].concat();
    assert_eq!(ids(&shop, q().in_states(&[Pending])).await, pending);
    let transit = q().in_states(&[Shipped, Delivered]);
    assert_eq!(ids(&shop, transit).await, o.ann(&[Shipped, Delivered]));
    let later = q().not_in_states(&[Pending, Confirmed]);
    let rest = [
        Paid, Processing, Shipped, Delivered, Cancelled, Refunded, Returned,
    ];
    assert_eq!(ids(&shop, later).await, o.ann(&rest));

    assert_eq!(ids(&shop, q().customer(BOB)).await, o.bob);
    assert_eq!(ids(&shop, q().customer(CUSTOMER)).await, o.ann);
    assert_eq!(ids(&shop, q().customer("nobody@example.com")).await, []);

    let created = q().created_between(after(1), after(4));
    assert_eq!(
        ids(&shop, created).await,
        o.ann(&[Paid, Processing, Shipped])
    );
    let since = OrderQuery {
        created_from: Some(after(8)),
        ..q()
    };
    assert_eq!(ids(&shop, since).await, o.bob);
    let until = OrderQuery {
        created_to: Some(after(0)),
        ..q()
    };
    assert_eq!(ids(&shop, until).await, o.ann(&[Pending]));
    let updated = q().updated_between(at(30), at(90));
    assert_eq!(ids(&shop, updated).await, o.ann(&[Confirmed]));
    let before = OrderQuery {
        updated_to: Some(after(9)),
        ..q()
    };
    let mut early = o.ann(&STATES);
    early.retain(|id| *id != o.ann(&[Confirmed])[0]);
    early.push(bob_pending);
    assert_eq!(ids(&shop, before).await, early);
    let lately = OrderQuery {
        updated_from: Some(after(9)),
        ..q()
    };
    assert_eq!(
        ids(&shop, lately).await,
        [o.ann(&[Confirmed])[0], bob_confirmed]
    );

    let captured = [Paid, Processing, Shipped, Delivered, Returned];
    let paid = q().payment_status(PaymentStatus::Captured);
    assert_eq!(ids(&shop, paid).await, o.ann(&captured));
    let refunded = q().payment_status(PaymentStatus::Refunded);
    assert_eq!(ids(&shop, refunded).await, o.ann(&[Refunded]));
    let unpaid = q().payment_status(PaymentStatus::None);
    let mut none = o.ann(&[Pending, Confirmed, Cancelled]);
    none.extend(o.bob);
    assert_eq!(ids(&shop, unpaid).await, none);
    let parcels = q().fulfillment_status(FulfillmentStatus::Shipped);
    assert_eq!(ids(&shop, parcels).await, o.ann(&[Shipped, Returned]));
    let arrived = q().fulfillment_status(FulfillmentStatus::Delivered);
    assert_eq!(ids(&shop, arrived).await, o.ann(&[Delivered]));
    let partial = q().fulfillment_status(FulfillmentStatus::PartiallyShipped);
    assert_eq!(ids(&shop, partial).await, []);
    shop.assert_verified().await;
}

#[tokio::test]
async fn query_fields_combine() {
    let (shop, _) = shop().await;
    let o = Orders::create(&shop).await;
    let q = OrderQuery::new;
    let early = q().in_states(&[Pending, Confirmed]);
    assert_eq!(ids(&shop, early.clone().customer(BOB)).await, o.bob);
    let ann_early = early.clone().customer(CUSTOMER);
    assert_eq!(ids(&shop, ann_early).await, o.ann(&[Pending, Confirmed]));
    let only_pending = early.clone().not_in_states(&[Confirmed]);
    assert_eq!(
        ids(&shop, only_pending).await,
        [o.ann(&[Pending])[0], o.bob[0]]
    );
    let touched = early.updated_between(at(30), at(90));
    assert_eq!(ids(&shop, touched).await, o.ann(&[Confirmed]));

    let goods = q()
        .customer(CUSTOMER)
        .payment_status(PaymentStatus::Captured);
    let out = goods.fulfillment_status(FulfillmentStatus::Shipped);
    assert_eq!(ids(&shop, out.clone()).await, o.ann(&[Shipped, Returned]));
    let on_the_road = out.not_in_states(&[Returned]);
    assert_eq!(ids(&shop, on_the_road).await, o.ann(&[Shipped]));
    let window = q().created_between(after(1), after(9));
    let unpaid = window.clone().payment_status(PaymentStatus::None);
    assert_eq!(ids(&shop, unpaid).await, [o.ann(&[Cancelled])[0], o.bob[0]]);
    let bobs = window.clone().customer(BOB).in_states(&[Confirmed]);
    assert_eq!(ids(&shop, bobs).await, [], "Bob's confirmed order is newer");
    let paged = window.not_in_states(&[Cancelled]).after(o.ann[3]).limit(2);
    assert_eq!(ids(&shop, paged).await, o.ann(&[Shipped, Delivered]));
    shop.assert_verified().await;
}

/// Pages of `limit` orders matching `query`, each starting after the last one seen.
async fn pages(shop: &Shop, query: &OrderQuery, limit: i64) -> Vec<Vec<OrderId>> {
    let mut pages = Vec::new();
    let mut query = query.clone().limit(limit);
    loop {
        let page = ids(shop, query.clone()).await;
        let Some(last) = page.last() else {
            return pages;
        };
        query.after = Some(*last);
        pages.push(page);
        assert!(pages.len() <= 20, "pagination does not end: {pages:?}");
    }
}

#[tokio::test]
async fn keyset_pagination_walks_every_order_once_in_id_order() {
    for file in [false, true] {
        let shop = if file {
            Shop::file().await
        } else {
            shop().await.0
        };
        let o = Orders::create(&shop).await;
        let all = o.all();
        let walked = pages(&shop, &OrderQuery::new(), 3).await;
        let sizes: Vec<usize> = walked.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 3, 2]);
        assert_eq!(walked.concat(), all, "each order once, in id order");
        let one_page = pages(&shop, &OrderQuery::new(), 11).await;
        assert_eq!(one_page, std::slice::from_ref(&all));

        let filter = OrderQuery::new().not_in_states(&[Pending]);
        let walked = pages(&shop, &filter, 2).await.concat();
        assert_eq!(walked, ids(&shop, filter).await);
        assert_eq!(walked.len(), 9);

        let q = OrderQuery::new;
        assert_eq!(ids(&shop, q().after(all[5])).await, all[6..]);
        assert_eq!(ids(&shop, q().limit(4)).await, all[..4]);
        assert_eq!(ids(&shop, q().limit(0)).await, []);
        assert_eq!(ids(&shop, q().after(all[10])).await, []);
        shop.assert_verified().await;
    }
}

#[tokio::test]
async fn counts_by_state_and_by_status() {
    let (shop, _) = shop().await;
    let o = Orders::create(&shop).await;
    let store = &shop.store;
    let counts = store.count_by_state(&OrderQuery::new()).await;
    // One of Ann's orders per state, and Bob's pending and confirmed ones.
    let twice = [Pending, Confirmed];
    let per_state = |s: &State| (*s, 1 + i64::from(twice.contains(s)));
    let expected: Vec<(State, i64)> = State::ALL.iter().map(per_state).collect();
    assert_eq!(counts.expect("counted"), expected, "in State::ALL order");
    let bob = store.count_by_state(&OrderQuery::new().customer(BOB)).await;
    assert_eq!(bob.expect("counted"), [(Pending, 1), (Confirmed, 1)]);
    let query = OrderQuery::new().in_states(&[Refunded, Pending]);
    let some = store.count_by_state(&query).await.expect("counted");
    assert_eq!(
        some,
        [(Pending, 2), (Refunded, 1)],
        "states with none left out"
    );
    let late = OrderQuery::new().created_between(after(7), at(60));
    let late = store.count_by_state(&late).await.expect("counted");
    assert_eq!(late, [(Pending, 1), (Confirmed, 1), (Returned, 1)]);

    let (payment, fulfillment) = store.count_by_status().await.expect("counted");
    let payment: BTreeMap<String, i64> = payment.into_iter().collect();
    let fulfillment: BTreeMap<String, i64> = fulfillment.into_iter().collect();
    let map = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    assert_eq!(
        payment,
        map(&[("none", 5), ("captured", 5), ("refunded", 1)])
    );
    let goods = [("unfulfilled", 8), ("shipped", 2), ("delivered", 1)];
    assert_eq!(fulfillment, map(&goods));
    let total = o.all().len() as i64;
    assert_eq!(payment.values().sum::<i64>(), total);
    shop.assert_verified().await;
}

#[tokio::test]
async fn the_state_query_uses_the_state_and_updated_at_index() {
    let migration = include_str!("../../../order-core/migrations/sqlite/0001_schema.sql");
    let index = "orders_state_updated";
    let declared = format!("CREATE INDEX {index} ON orders (state, updated_at);");
    assert!(
        migration.contains(&declared),
        "the migration declares {index}"
    );
    let (shop, store) = shop().await;
    Orders::create(&shop).await;
    // What the adapter issues for `OrderQuery::new().in_states(&[Pending, Confirmed])`
    // (src/store/sqlite/query.rs and rows.rs), then with an updated range too.
    let select = "SELECT o.id, o.number, o.customer_id, c.email, o.state, o.version, \
         o.parent_order_id, o.currency, o.total_cents, o.payment_status, \
         o.fulfillment_status, o.shipping_address, o.created_at, o.updated_at \
         FROM orders o JOIN customers c ON c.id = o.customer_id";
    for filter in ["", " AND o.updated_at >= ? AND o.updated_at < ?"] {
        let sql =
            format!("EXPLAIN QUERY PLAN {select} WHERE o.state IN (?, ?){filter} ORDER BY o.id");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
        query = query.bind(Pending.as_str()).bind(Confirmed.as_str());
        if !filter.is_empty() {
            query = query.bind(at(0)).bind(at(90));
        }
        let plan = query.fetch_all(store.pool()).await.expect("explained");
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        let on_orders = details
            .iter()
            .find(|d| d.contains(" o ") || d.ends_with(" o"));
        let on_orders = on_orders.expect("a step reads orders");
        assert!(
            on_orders.contains(&format!("INDEX {index} (state=?")),
            "{details:?}"
        );
    }
    let listed = ids(&shop, OrderQuery::new().in_states(&[Pending, Confirmed])).await;
    assert_eq!(listed.len(), 4);
}

// Bulk.

fn cancel_by_support() -> Command {
    let support = Actor::support(SUPPORT);
    Command::new(Event::Cancel, support).reason(Reason::CustomerRequest)
}

/// What `shop` stores about `orders`, to compare before and after.
async fn snapshot(shop: &Shop, orders: &[OrderId]) -> String {
    let store = &shop.store;
    let mut text = format!("{:?}", store.products().await.expect("readable"));
    for id in orders {
        let order = store.order(*id).await.expect("readable");
        let history = store.history(*id).await.expect("readable");
        let messages = store.messages(*id).await.expect("readable");
        let attempts = store.attempts(*id).await.expect("readable");
        text += &format!("\n{order:?}\n{history:?}\n{messages:?}\n{attempts:?}");
    }
    text
}

fn outcomes(report: &BulkReport) -> Vec<(OrderId, &str)> {
    let items = report.items.iter();
    items.map(|i| (i.order, i.outcome.as_str())).collect()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

#[tokio::test]
async fn one_event_on_many_orders_gives_each_its_own_result() {
    let shop = Shop::memory().await;
    // The order that will be refused comes first, so the others run after a refusal.
    let shipped = shop.order_in(Shipped).await;
    let pending = shop.order_in(Pending).await;
    let confirmed = shop.order_in(Confirmed).await;
    let missing = OrderId(999_999);
    let target = BulkTarget::Ids(vec![missing, confirmed, shipped, pending, confirmed]);
    let options = BulkOptions::default();
    let report = shop
        .engine
        .bulk(&target, &cancel_by_support(), options)
        .await;
    let report = report.expect("the bulk runs");

    let expected = [
        (shipped, "invalid_transition"),
        (pending, "fired"),
        (confirmed, "fired"),
        (missing, "order_not_found"),
    ];
    assert_eq!(
        outcomes(&report),
        expected,
        "one result per order, in id order"
    );
    let want = [
        ("fired", 2),
        ("invalid_transition", 1),
        ("order_not_found", 1),
    ];
    assert_eq!(report.counts, counts(&want));
    assert_eq!((report.count("fired"), report.count("would_fire")), (2, 0));
    let fired = |from: State, seq: i64, order: OrderId| Outcome {
        order,
        event: Event::Cancel,
        from,
        to: Cancelled,
        seq,
        is_override: false,
        replayed: false,
    };
    assert_eq!(report.items[1].transition, Some(fired(Pending, 1, pending)));
    assert_eq!(
        report.items[2].transition,
        Some(fired(Confirmed, 2, confirmed))
    );
    let refused = &report.items[0];
    assert_eq!(refused.transition, None);
    let error = refused.error.as_deref().expect("the refusal says why");
    assert!(error.contains("shipped"), "{error}");
    assert!(report.items[1].error.is_none() && report.items[2].error.is_none());

    assert_eq!(shop.state(shipped).await, Shipped);
    assert_eq!(shop.state(pending).await, Cancelled);
    assert_eq!(shop.state(confirmed).await, Cancelled);
    assert_eq!(
        shop.store.history(shipped).await.expect("readable").len(),
        4
    );
    let attempts = shop.store.attempts(shipped).await.expect("readable");
    let last = attempts.last().expect("the refusal is recorded");
    assert!(last.error_kind.ends_with("invalid_transition"), "{last:?}");
    // The confirmed order's reservation went back on the shelf.
    let widget = shop.store.product("WIDGET").await.expect("readable");
    let widget = widget.expect("exists");
    assert_eq!((widget.on_hand, widget.reserved), (998, 0));
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_dry_run_changes_nothing_but_says_what_would_fire() {
    let shop = Shop::memory().await;
    let orders = [
        shop.order_in(Pending).await,
        shop.order_in(Confirmed).await,
        shop.order_in(Shipped).await,
    ];
    let before = snapshot(&shop, &orders).await;
    let target = BulkTarget::Query(OrderQuery::new().customer(CUSTOMER));
    let dry = BulkOptions {
        dry_run: true,
        batch_size: 2,
    };
    let report = shop.engine.bulk(&target, &cancel_by_support(), dry).await;
    let report = report.expect("the bulk runs");
    let expected = [
        (orders[0], "would_fire"),
        (orders[1], "would_fire"),
        (orders[2], "invalid_transition"),
    ];
    assert_eq!(outcomes(&report), expected);
    let want = [("would_fire", 2), ("invalid_transition", 1)];
    assert_eq!(report.counts, counts(&want));
    let would = report.items[1].transition.as_ref().expect("the transition");
    assert_eq!((would.from, would.to, would.seq), (Confirmed, Cancelled, 2));
    assert_eq!(
        snapshot(&shop, &orders).await,
        before,
        "a dry run changes nothing"
    );

    // The real run does what the dry run said.
    let options = BulkOptions::default();
    let report = shop
        .engine
        .bulk(&target, &cancel_by_support(), options)
        .await;
    let report = report.expect("the bulk runs");
    let fired = [("fired", 2), ("invalid_transition", 1)];
    assert_eq!(report.counts, counts(&fired));
    assert_eq!(shop.state(orders[1]).await, Cancelled);
    shop.assert_verified().await;
}

#[tokio::test]
async fn batches_of_two_cover_all_seven_orders() {
    let shop = Shop::memory().await;
    let untouched = shop.order_in(Confirmed).await;
    let mut orders = Vec::new();
    for _ in 0..7 {
        orders.push(shop.order().await);
    }
    let pending = BulkTarget::Query(OrderQuery::new().in_states(&[Pending]));
    let options = BulkOptions {
        dry_run: false,
        batch_size: 2,
    };
    let confirm = Command::new(Event::Confirm, Actor::system());
    let report = shop.engine.bulk(&pending, &confirm, options).await;
    let report = report.expect("the bulk runs");
    let fired: Vec<(OrderId, &str)> = orders.iter().map(|id| (*id, "fired")).collect();
    assert_eq!(outcomes(&report), fired, "every order once, in id order");
    for id in &orders {
        assert_eq!(shop.state(*id).await, Confirmed);
    }
    let history = shop.store.history(untouched).await.expect("readable");
    assert_eq!(history.len(), 1, "an order outside the query is left alone");

    let ids = BulkTarget::Ids(orders.clone());
    let report = shop.engine.bulk(&ids, &cancel_by_support(), options).await;
    assert_eq!(report.expect("the bulk runs").count("fired"), 7);
    let limited = OrderQuery::new().in_states(&[Cancelled]).limit(5);
    let reopen = Command::new(Event::Reopen, Actor::admin(harness::ADMIN));
    let reopen = reopen.reason(Reason::Other);
    let report = shop
        .engine
        .bulk(&BulkTarget::Query(limited), &reopen, options)
        .await;
    let report = report.expect("the bulk runs");
    let first_five: Vec<_> = orders[..5].iter().map(|id| (*id, "fired")).collect();
    assert_eq!(outcomes(&report), first_five, "the query's limit holds");
    assert_eq!(shop.state(orders[6]).await, Cancelled);
    shop.assert_verified().await;
}

#[tokio::test]
async fn a_bulk_command_with_a_key_replays_instead_of_repeating() {
    let shop = Shop::memory().await;
    let orders = [
        shop.order_in(Pending).await,
        shop.order_in(Confirmed).await,
        shop.order_in(Shipped).await,
    ];
    let target = BulkTarget::Ids(orders.to_vec());
    let command = cancel_by_support().key("bulk-cancel-1");
    let options = BulkOptions::default();
    let first = shop.engine.bulk(&target, &command, options).await;
    let first = first.expect("the bulk runs");
    let after_first = snapshot(&shop, &orders[..2]).await;
    let second = shop.engine.bulk(&target, &command, options).await;
    let second = second.expect("the bulk runs");

    assert_eq!(outcomes(&second), outcomes(&first));
    assert_eq!(second.counts, first.counts);
    for (once, again) in first.items.iter().zip(&second.items).take(2) {
        let once = once.transition.clone().expect("fired");
        let again = again.transition.clone().expect("replayed");
        assert!(!once.replayed && again.replayed, "{again:?}");
        assert_eq!(
            Outcome {
                replayed: false,
                ..again
            },
            once
        );
    }
    assert_eq!(
        snapshot(&shop, &orders[..2]).await,
        after_first,
        "nothing repeated"
    );
    for id in &orders[..2] {
        let history = shop.store.history(*id).await.expect("readable");
        let cancels = history.iter().filter(|r| r.event == Event::Cancel).count();
        assert_eq!(cancels, 1);
        let key = history.last().and_then(|r| r.idempotency_key.clone());
        assert_eq!(key, Some(format!("bulk-cancel-1:{id}")));
    }
    // The refused order has no stored outcome: it is tried again, and refused again.
    let attempts = shop.store.attempts(orders[2]).await.expect("readable");
    assert_eq!(attempts.len(), 2);

    // A new key is a new command: cancelled orders cannot be cancelled again.
    let fresh = cancel_by_support().key("bulk-cancel-2");
    let third = shop.engine.bulk(&target, &fresh, options).await;
    let third = third.expect("the bulk runs");
    assert_eq!(third.count("invalid_transition"), 3);
    shop.assert_verified().await;
}
