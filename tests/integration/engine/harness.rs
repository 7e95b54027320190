//! A shop to test against: a store (memory or file), a catalog, staff, a manual clock in
//! business hours, a payment simulator, and a way to bring an order into any state by
//! the machine's own transitions.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use order_core::clock::Clock as _;
use order_core::clock::ManualClock;
use order_core::engine::{ShipmentCommand, ShipmentLine};
use order_core::order::{ActorKind, Event, Reason, State};
use order_core::payment::{Simulator, SimulatorConfig};
use order_core::{
    Actor, Command, Engine, NewOrder, OrderId, PostgresStore, ShipmentId, SqliteStore, Store,
};

pub const CUSTOMER: &str = "ann@example.com";
pub const SUPPORT: &str = "sam";
pub const ADMIN: &str = "ada";

/// Tuesday 24 November 2026, 11:00 in Berlin: the warehouse is open.
pub fn business_hours() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .expect("a valid time")
        .with_timezone(&Utc)
}

#[derive(Debug)]
pub struct Shop {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub payments: Arc<Simulator>,
    /// Keeps a file database's folder for as long as the shop lives.
    pub _dir: Option<tempfile::TempDir>,
    /// How to reach the database again, for a shop made by `file`.
    pub url: Option<String>,
}

/// A fresh, unmigrated store of the backend this copy of the suite runs on: an
/// in-memory SQLite database, or a new database on the tests' PostgreSQL cluster. The
/// folder, when there is one, must outlive the store.
pub async fn fresh_store() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match super::BACKEND {
        super::Backend::Sqlite => (connect("sqlite::memory:").await, None),
        super::Backend::Postgres => (connect(&tests::postgres::database().await).await, None),
    }
}

/// A store on a database many connections share: a SQLite file in a temporary folder,
/// or a new PostgreSQL database. Its URL reconnects to it.
pub async fn shared_store() -> (Arc<dyn Store>, String, Option<tempfile::TempDir>) {
    match super::BACKEND {
        super::Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let url = format!("sqlite://{}", dir.path().join("orders.db").display());
            (connect(&url).await, url, Some(dir))
        }
        super::Backend::Postgres => {
            let url = tests::postgres::database().await;
            (connect(&url).await, url, None)
        }
    }
}

/// Opens the database of `url`, SQLite or PostgreSQL.
pub async fn connect(url: &str) -> Arc<dyn Store> {
    if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url).await.expect("the database opens"))
    } else {
        Arc::new(
            PostgresStore::connect(url)
                .await
                .expect("the database opens"),
        )
    }
}

impl Shop {
    /// A shop on a fresh database of the suite's backend (SQLite: in memory).
    pub async fn memory() -> Shop {
        let (store, dir) = fresh_store().await;
        Shop::with_store(store, dir, SimulatorConfig::default()).await
    }

    /// A shop on a database that several connections share (SQLite: a file).
    pub async fn file() -> Shop {
        let (store, url, dir) = shared_store().await;
        let mut shop = Shop::with_store(store, dir, SimulatorConfig::default()).await;
        shop.url = Some(url);
        shop
    }

    pub async fn with_store(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        config: SimulatorConfig,
    ) -> Shop {
        store.migrate().await.expect("the schema migrates");
        for (sku, name, price, stock) in [
            ("WIDGET", "Widget", 1_000, 1_000),
            ("GADGET", "Gadget", 2_500, 500),
            ("SCARCE", "Last one", 500, 1),
        ] {
            store
                .add_product(sku, name, price, stock)
                .await
                .expect("a product");
        }
        store
            .add_staff(SUPPORT, ActorKind::Support)
            .await
            .expect("staff");
        store
            .add_staff(ADMIN, ActorKind::Admin)
            .await
            .expect("staff");
        let clock = Arc::new(ManualClock::new(business_hours()));
        let payments = Arc::new(Simulator::new(config).with_clock(clock.clone()));
        let engine = Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_payments(payments.clone());
        Shop {
            engine,
            store,
            clock,
            payments,
            _dir: dir,
            url: None,
        }
    }

    /// The same shop, its labels made by `carrier`.
    pub fn with_carrier(mut self, carrier: Arc<dyn order_core::carrier::Carrier>) -> Shop {
        self.engine = self.engine.clone().with_carrier(carrier);
        self
    }

    /// A new order of two widgets and a gadget.
    pub async fn order(&self) -> OrderId {
        self.order_of(&[("WIDGET", 2), ("GADGET", 1)]).await
    }

    pub async fn order_of(&self, items: &[(&str, i64)]) -> OrderId {
        self.engine
            .create_order(&NewOrder::new(CUSTOMER, items))
            .await
            .expect("the order is created")
            .id
    }

    /// Fires an event that must succeed.
    pub async fn fire(&self, id: OrderId, event: Event, actor: Actor) {
        let command = Command::new(event, actor).reason(Reason::Other);
        if let Err(err) = self.engine.fire(id, command).await {
            panic!("{event} on order {id}: {err}");
        }
    }

    pub async fn state(&self, id: OrderId) -> State {
        self.store
            .order(id)
            .await
            .expect("readable")
            .expect("the order exists")
            .state
    }

    /// Brings a new order into `state` through the machine's transitions, the way a
    /// shop would.
    pub async fn order_in(&self, state: State) -> OrderId {
        let id = self.order().await;
        self.drive(id, state).await;
        assert_eq!(self.state(id).await, state);
        id
    }

    /// Brings an order from `pending` into `state` (see `order_in`).
    pub async fn drive(&self, id: OrderId, state: State) {
        let path: &[State] = match state {
            State::Pending => &[],
            State::Confirmed => &[State::Confirmed],
            State::Paid => &[State::Confirmed, State::Paid],
            State::Processing => &[State::Confirmed, State::Paid, State::Processing],
            State::Shipped => &[
                State::Confirmed,
                State::Paid,
                State::Processing,
                State::Shipped,
            ],
            State::Delivered => &[
                State::Confirmed,
                State::Paid,
                State::Processing,
                State::Shipped,
                State::Delivered,
            ],
            State::Cancelled => &[State::Cancelled],
            State::Refunded => &[State::Confirmed, State::Paid, State::Refunded],
            State::Returned => &[
                State::Confirmed,
                State::Paid,
                State::Processing,
                State::Shipped,
                State::Returned,
            ],
        };
        for next in path {
            self.step_to(id, *next).await;
        }
    }

    async fn step_to(&self, id: OrderId, next: State) {
        match next {
            State::Confirmed => self.fire(id, Event::Confirm, Actor::system()).await,
            State::Paid => {
                let attempt = self
                    .engine
                    .authorize_payment(id)
                    .await
                    .expect("authorization runs");
                assert_eq!(attempt.outcome, "authorized");
                self.fire(id, Event::Pay, Actor::customer(CUSTOMER)).await;
            }
            State::Processing => self.fire(id, Event::StartProcessing, Actor::system()).await,
            State::Shipped => {
                self.ship_everything(id).await;
                self.fire(id, Event::Ship, Actor::system()).await;
            }
            State::Delivered => {
                for shipment in self.store.shipments(id).await.expect("readable") {
                    self.deliver_parcel(id, shipment.id)
                        .await
                        .expect("delivered");
                }
                self.fire(id, Event::Deliver, Actor::carrier()).await;
            }
            State::Cancelled => {
                self.fire(id, Event::Cancel, Actor::customer(CUSTOMER))
                    .await
            }
            State::Refunded => {
                self.fire(id, Event::Refund, Actor::customer(CUSTOMER))
                    .await
            }
            State::Returned => self.fire(id, Event::ReturnToSender, Actor::carrier()).await,
            State::Pending => {}
        }
    }

    /// One parcel with every unit of every line.
    pub async fn ship_everything(&self, id: OrderId) {
        let lines: Vec<ShipmentLine> = self
            .store
            .items(id)
            .await
            .expect("readable")
            .iter()
            .map(|i| ShipmentLine {
                item: i.id,
                quantity: i.quantity - i.qty_shipped,
            })
            .collect();
        self.engine
            .add_shipment(id, &lines, "dhl", Some("TRACK-1"))
            .await
            .expect("the parcel is added");
    }

    /// Takes a parcel through the carrier's steps to `delivered` (nothing when it is
    /// there already): pickup, at the next pickup slot when the carrier's hours are
    /// over, then out for delivery and delivered.
    pub async fn deliver_parcel(
        &self,
        id: OrderId,
        shipment: ShipmentId,
    ) -> Result<(), order_core::engine::ShipmentError> {
        use order_core::shipment::{ActorKind as By, Event as Step, Machine as Parcel};
        let parcel = self.store.shipments(id).await.expect("readable");
        let state = parcel
            .iter()
            .find(|p| p.id == shipment)
            .map_or("label_created", |p| p.state.as_str())
            .to_owned();
        let pickup = <Parcel as statemachine::Machine>::calendar("carrier_pickup")
            .expect("shipment.fsm declares carrier_pickup");
        let now = self.clock.now();
        let mut at = if pickup.is_open(now) {
            now
        } else {
            pickup.next_open(now).unwrap_or(now)
        };
        let steps: &[Step] = match state.as_str() {
            "label_created" => &[Step::PickUp, Step::Dispatch, Step::Deliver],
            "in_transit" | "failed_attempt" => &[Step::Dispatch, Step::Deliver],
            "out_for_delivery" => &[Step::Deliver],
            _ => &[],
        };
        for step in steps {
            let command = ShipmentCommand::new(*step, By::Carrier).at(at);
            self.engine.fire_shipment(id, shipment, &command).await?;
            at += chrono::TimeDelta::hours(2);
        }
        Ok(())
    }

    /// The actor of a kind: the order's owner, staff who hold their role, services.
    pub fn actor(kind: ActorKind) -> Actor {
        match kind {
            ActorKind::Customer => Actor::customer(CUSTOMER),
            ActorKind::Support => Actor::support(SUPPORT),
            ActorKind::Admin => Actor::admin(ADMIN),
            ActorKind::System => Actor::system(),
            ActorKind::Carrier => Actor::carrier(),
        }
    }

    /// Every stored invariant holds.
    pub async fn assert_verified(&self) {
        let findings = self.store.verify().await.expect("verify runs");
        assert!(findings.is_empty(), "verify found: {findings:#?}");
    }
}
