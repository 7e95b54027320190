//! `FaultyStore`: a real store that fails a chosen method once, for the failure tests.
//! The tests crate has no `async-trait`, so the traits' `async_trait` signatures are
//! spelled out by macros.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use order_core::order::{ActorKind, State};
use order_core::payment::SimulatorConfig;
use order_core::store::{
    Movement, NewEntityTransition, NewMessage, NewPayment, NewTransition, Result as StoreResult,
};
use order_core::{
    Attempt, EntityTransition, Finding, InboxMessage, ItemId, NewOrder, Order, OrderId, OrderItem,
    OrderQuery, OutboxMessage, Payment, Product, ProductId, Refund, Shipment, ShipmentId, Staff,
    Store, StoreError, StoreTx, TransitionRecord,
};

use super::harness::Shop;

type Fut<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Methods armed to fail: the `skip`-th next call of `method` fails, once.
#[derive(Debug, Default)]
pub(super) struct Faults(Mutex<Vec<(&'static str, usize)>>);

impl Faults {
    pub(super) fn arm(&self, method: &'static str) {
        self.arm_nth(method, 0);
    }

    pub(super) fn arm_nth(&self, method: &'static str, skip: usize) {
        self.lock().push((method, skip));
    }

    pub(super) fn pending(&self) -> Vec<&'static str> {
        self.lock().iter().map(|(method, _)| *method).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, usize)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self, method: &str) -> StoreResult<()> {
        let mut armed = self.lock();
        if let Some(i) = armed.iter().position(|(m, _)| *m == method) {
            if armed[i].1 == 0 {
                armed.remove(i);
                return Err(StoreError::Injected(method.to_owned()));
            }
            armed[i].1 -= 1;
        }
        Ok(())
    }
}

/// A store that delegates everything, failing armed methods. `Store` methods are armed
/// as `store.NAME`, `StoreTx` methods by their bare name.
#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

struct FaultyTx {
    inner: Box<dyn StoreTx>,
    faults: Arc<Faults>,
}

macro_rules! delegate {
    ($prefix:literal, [$($m:tt)?];) => {};
    ($prefix:literal, [$($m:tt)?]; fn $name:ident[$($lt:lifetime),*]($($arg:ident: $ty:ty),*) -> $ret:ty; $($rest:tt)*) => {
        fn $name<'life0, $($lt,)* 'async_trait>(&'life0 $($m)? self, $($arg: $ty),*) -> Fut<'async_trait, $ret>
        where 'life0: 'async_trait, $($lt: 'async_trait,)* Self: 'async_trait,
        {
            Box::pin(async move {
                self.faults.check(concat!($prefix, stringify!($name)))?;
                self.inner.$name($($arg),*).await
            })
        }
        delegate! { $prefix, [$($m)?]; $($rest)* }
    };
}

impl Store for FaultyStore {
    fn begin<'life0, 'async_trait>(&'life0 self) -> Fut<'async_trait, Box<dyn StoreTx>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check("store.begin")?;
            let inner = self.inner.begin().await?;
            let faults = self.faults.clone();
            Ok(Box::new(FaultyTx { inner, faults }) as Box<dyn StoreTx>)
        })
    }

    delegate! { "store.", [];
        fn migrate[]() -> ();
        fn add_product['a, 'b](sku: &'a str, name: &'b str, price_cents: i64, on_hand: i64) -> Product;
        fn product['a](sku: &'a str) -> Option<Product>;
        fn products[]() -> Vec<Product>;
        fn add_staff['a](name: &'a str, role: ActorKind) -> Staff;
        fn staff['a](name: &'a str) -> Option<Staff>;
        fn create_order['a](order: &'a NewOrder, initial: State, now: DateTime<Utc>) -> Order;
        fn record_attempt['a](attempt: &'a Attempt) -> ();
        fn order[](id: OrderId) -> Option<Order>;
        fn items[](id: OrderId) -> Vec<OrderItem>;
        fn history[](id: OrderId) -> Vec<TransitionRecord>;
        fn attempts[](id: OrderId) -> Vec<Attempt>;
        fn payments[](id: OrderId) -> Vec<Payment>;
        fn refunds[](id: OrderId) -> Vec<Refund>;
        fn shipments[](id: OrderId) -> Vec<Shipment>;
        fn entity_trail['a](machine: &'a str, entity: i64) -> Vec<EntityTransition>;
        fn inbox['a](source: &'a str) -> Vec<InboxMessage>;
        fn list['a](query: &'a OrderQuery) -> Vec<Order>;
        fn count_by_state['a](query: &'a OrderQuery) -> Vec<(State, i64)>;
        fn count_by_status[]() -> (Vec<(String, i64)>, Vec<(String, i64)>);
        fn verify[]() -> Vec<Finding>;
        fn due_messages[](now: DateTime<Utc>, limit: i64) -> Vec<OutboxMessage>;
        fn mark_delivered[](id: i64, now: DateTime<Utc>) -> ();
        fn mark_failed['a](id: i64, error: &'a str, next_attempt: DateTime<Utc>) -> ();
        fn messages[](order: OrderId) -> Vec<OutboxMessage>;
    }
}

impl StoreTx for FaultyTx {
    delegate! { "", [mut];
        fn command_outcome['a](key: &'a str) -> Option<String>;
        fn record_command['a, 'b](key: &'a str, order: OrderId, outcome: &'b str, at: DateTime<Utc>) -> ();
        fn lock_order[](id: OrderId) -> Option<Order>;
        fn items[](id: OrderId) -> Vec<OrderItem>;
        fn update_order['a](order: &'a Order, at: DateTime<Utc>) -> bool;
        fn last_seq[](id: OrderId) -> i64;
        fn append_transition['a, 'b](row: &'a NewTransition<'b>) -> ();
        fn enqueue['a, 'b](message: &'a NewMessage<'b>) -> ();
        fn entered_at[](id: OrderId, state: State) -> Option<DateTime<Utc>>;
        fn lock_products['a](ids: &'a [ProductId]) -> Vec<Product>;
        fn reserve[](order: OrderId, product: ProductId, qty: i64, at: DateTime<Utc>) -> bool;
        fn move_stock[](order: OrderId, product: ProductId, kind: Movement, qty: i64, at: DateTime<Utc>) -> ();
        fn reserved_by[](order: OrderId) -> Vec<(ProductId, i64)>;
        fn restocked_by[](order: OrderId) -> Vec<(ProductId, i64)>;
        fn payments[](order: OrderId) -> Vec<Payment>;
        fn payments_by_reference['a](reference: &'a str) -> Vec<Payment>;
        fn insert_payment['a, 'b](payment: &'a NewPayment<'b>) -> Payment;
        fn update_payment['a](payment: &'a Payment, at: DateTime<Utc>) -> ();
        fn refunds[](order: OrderId) -> Vec<Refund>;
        fn insert_refund['a](refund: &'a Refund, at: DateTime<Utc>) -> ();
        fn update_refund_state['a, 'b](key: &'a str, state: &'b str) -> ();
        fn shipments[](order: OrderId) -> Vec<Shipment>;
        fn insert_shipment['a, 'b, 'c](order: OrderId, carrier: &'a str, tracking: Option<&'b str>, items: &'c [(ItemId, i64)], at: DateTime<Utc>) -> ShipmentId;
        fn set_returned[](item: ItemId, qty_returned: i64) -> ();
        fn set_shipped[](item: ItemId, qty_shipped: i64) -> ();
        fn lock_shipment[](id: ShipmentId) -> Option<Shipment>;
        fn shipment_by_tracking['a](tracking: &'a str) -> Option<Shipment>;
        fn write_shipment_transition['a, 'b](row: &'a NewEntityTransition<'b>) -> ();
        fn append_entity_transition['a, 'b](row: &'a NewEntityTransition<'b>) -> ();
        fn entity_trail['a](machine: &'a str, entity: i64) -> Vec<EntityTransition>;
        fn inbox_receive['a, 'b, 'c](source: &'a str, external_id: &'b str, payload: &'c serde_json::Value, at: DateTime<Utc>) -> bool;
        fn inbox_pending['a](source: &'a str, limit: i64) -> Vec<InboxMessage>;
        fn inbox_done['a, 'b, 'c](source: &'a str, external_id: &'b str, outcome: &'c str, at: DateTime<Utc>) -> ();
        fn replace_items['a](order: OrderId, items: &'a [(ProductId, i64, i64)]) -> ();
        fn move_items['a](items: &'a [ItemId], to: OrderId) -> ();
        fn insert_child_order['a](parent: &'a Order, state: State, at: DateTime<Utc>) -> Order;
        fn add_note['a, 'b](order: OrderId, author: &'a str, body: &'b str, at: DateTime<Utc>) -> ();
        fn savepoint[]() -> ();
        fn release_savepoint[]() -> ();
        fn rollback_to_savepoint[]() -> ();
    }

    /// A failed commit drops the inner transaction, which rolls it back.
    fn commit<'async_trait>(self: Box<Self>) -> Fut<'async_trait, ()>
    where
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check("commit")?;
            self.inner.commit().await
        })
    }

    fn rollback<'async_trait>(self: Box<Self>) -> Fut<'async_trait, ()>
    where
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check("rollback")?;
            self.inner.rollback().await
        })
    }
}

pub(super) async fn faulty_shop() -> (Shop, Arc<Faults>) {
    let (inner, dir) = super::harness::fresh_store().await;
    let faults = Arc::new(Faults::default());
    let store = FaultyStore {
        inner,
        faults: faults.clone(),
    };
    let config = SimulatorConfig::default();
    (Shop::with_store(Arc::new(store), dir, config).await, faults)
}
