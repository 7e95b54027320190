//! The order domain's data: ids, actors, commands, orders and their parts, as the engine
//! and every storage adapter see them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::order::{ActorKind, Event, Reason, State};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An order's row id.
    OrderId
);
id!(
    /// A product's row id.
    ProductId
);
id!(
    /// A customer's row id.
    CustomerId
);
id!(
    /// An order line's row id.
    ItemId
);
id!(
    /// A payment attempt's row id.
    PaymentId
);
id!(
    /// A shipment's row id.
    ShipmentId
);

/// Who fires an event: an actor kind of the machine and, for customers and staff, who
/// exactly (the customer's email, the staff member's name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn customer(email: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Customer,
            id: Some(email.into()),
        }
    }

    pub fn support(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Support,
            id: Some(name.into()),
        }
    }

    pub fn admin(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Admin,
            id: Some(name.into()),
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
        }
    }

    pub fn carrier() -> Actor {
        Actor {
            kind: ActorKind::Carrier,
            id: None,
        }
    }
}

/// `customer:EMAIL`, `support:NAME`, `system`.
impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{id}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// One request to move an order: `engine.fire(order, command)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub event: Event,
    pub actor: Actor,
    pub reason: Option<Reason>,
    pub note: Option<String>,
    /// Free-form data recorded in the audit row.
    pub metadata: serde_json::Value,
    /// A command sent twice with the same key runs once; the second call gets the
    /// stored outcome.
    pub idempotency_key: Option<String>,
}

impl Command {
    pub fn new(event: Event, actor: Actor) -> Command {
        Command {
            event,
            actor,
            reason: None,
            note: None,
            metadata: serde_json::Value::Null,
            idempotency_key: None,
        }
    }

    pub fn reason(mut self, reason: Reason) -> Command {
        self.reason = Some(reason);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Command {
        self.note = Some(note.into());
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Command {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Command {
        self.metadata = metadata;
        self
    }
}

/// What a successful transition did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub order: OrderId,
    pub event: Event,
    pub from: State,
    pub to: State,
    /// The audit row's sequence number.
    pub seq: i64,
    pub is_override: bool,
    /// True when the idempotency key had been seen and this is the stored outcome.
    pub replayed: bool,
}

/// Where an order's money stands, a rollup kept on the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    None,
    Authorized,
    Declined,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
}

/// Where an order's goods stand, a rollup kept on the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    Unfulfilled,
    PartiallyShipped,
    Shipped,
    Delivered,
    Returned,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = statemachine::UnknownName;

            fn from_str(text: &str) -> Result<$ty, statemachine::UnknownName> {
                match text {
                    $($text => Ok($ty::$variant),)*
                    _ => Err(statemachine::UnknownName::new(
                        stringify!($ty),
                        text,
                        [$($text),*],
                    )),
                }
            }
        }
    };
}

text_enum!(PaymentStatus {
    None => "none",
    Authorized => "authorized",
    Declined => "declined",
    Captured => "captured",
    PartiallyRefunded => "partially_refunded",
    Refunded => "refunded",
    Voided => "voided",
});

text_enum!(FulfillmentStatus {
    Unfulfilled => "unfulfilled",
    PartiallyShipped => "partially_shipped",
    Shipped => "shipped",
    Delivered => "delivered",
    Returned => "returned",
});

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    /// The human-facing number, e.g. `ORD-000042`.
    pub number: String,
    pub customer: CustomerId,
    pub customer_email: String,
    pub state: State,
    /// Bumped by every write of the row; writes compare and set it.
    pub version: i64,
    pub parent: Option<OrderId>,
    pub currency: String,
    pub total_cents: i64,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub shipping_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub id: ItemId,
    pub order: OrderId,
    pub line_no: i64,
    pub product: ProductId,
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub qty_shipped: i64,
    pub qty_returned: i64,
}

/// A product and its stock counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub on_hand: i64,
    pub reserved: i64,
}

impl Product {
    /// What can still be reserved.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// A member of staff and the role they hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub name: String,
    /// `support` or `admin`: an actor kind of the machine declared `staff`.
    pub role: ActorKind,
}

/// A new order: the customer (created when new) and lines of SKU and quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub customer_email: String,
    pub items: Vec<(String, i64)>,
    pub shipping_address: Option<String>,
    pub currency: String,
}

impl NewOrder {
    pub fn new(customer_email: impl Into<String>, items: &[(&str, i64)]) -> NewOrder {
        NewOrder {
            customer_email: customer_email.into(),
            items: items
                .iter()
                .map(|(sku, q)| ((*sku).to_owned(), *q))
                .collect(),
            shipping_address: None,
            currency: "EUR".to_owned(),
        }
    }
}

/// One entry of an order's audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub order: OrderId,
    pub seq: i64,
    pub event: Event,
    pub from: State,
    pub to: State,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub reason: Option<Reason>,
    pub note: Option<String>,
    pub is_override: bool,
    pub machine_hash: String,
    pub idempotency_key: Option<String>,
    pub metadata: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A rejected or failed command, recorded in its own transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub order: OrderId,
    pub event: Event,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    /// The pipeline step that refused, e.g. `authorization`.
    pub error_kind: String,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// A payment attempt against the processor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order: OrderId,
    pub attempt_no: i64,
    /// A state of `payment.fsm`: `initiated`, `authorized`, `captured`,
    /// `partially_refunded`, `refunded`, `failed` (declined or errored; `failure_code`
    /// says which) or `voided`.
    pub state: String,
    pub amount_cents: i64,
    pub idempotency_key: String,
    pub processor_ref: Option<String>,
    pub failure_code: Option<String>,
    /// The processor asked for a manual review before capture.
    pub fraud_review: bool,
}

impl Payment {
    /// Whether the processor captured the payment's amount, some or all of which may
    /// have been refunded since: `captured`, `partially_refunded` or `refunded`.
    pub fn holds_capture(&self) -> bool {
        matches!(
            self.state.as_str(),
            "captured" | "partially_refunded" | "refunded"
        )
    }
}

/// A refund of captured money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub order: OrderId,
    pub payment: PaymentId,
    pub amount_cents: i64,
    /// `succeeded`, `failed` or `reversed`.
    pub state: String,
    pub reason: Option<String>,
    pub idempotency_key: String,
    pub processor_ref: Option<String>,
}

/// A parcel: some quantities of some lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub order: OrderId,
    /// A state of `shipment.fsm`: `label_created`, `in_transit`, `out_for_delivery`,
    /// `failed_attempt`, `delivered`, `returned_to_sender`, `lost` or `cancelled`.
    pub state: String,
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub items: Vec<(ItemId, i64)>,
    pub shipped_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A notification waiting in (or delivered from) the transactional outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub aggregate: OrderId,
    /// The notification's name, e.g. `order_confirmed`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// `order:<id>:<seq>:<kind>`: a consumer drops repeats by it.
    pub dedupe_key: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One audit row of a payment's or a shipment's own machine, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityTransition {
    /// The machine as declared: `Payment` or `Shipment`.
    pub machine: String,
    pub entity: i64,
    pub order: OrderId,
    pub seq: i64,
    pub event: String,
    pub from: String,
    pub to: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub reason: Option<String>,
    pub is_override: bool,
    pub machine_hash: String,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A webhook from the payment processor or a carrier, kept once per external id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxMessage {
    pub source: String,
    pub external_id: String,
    pub payload: serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// What processing made of it: `applied`, `duplicate`, `ignored: ...`.
    pub outcome: Option<String>,
}
