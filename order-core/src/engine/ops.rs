//! Operations on an order within its state: the `allow` rules of the machine
//! (modify items, change address, split, add shipment, add note), payment
//! authorization, and the carrier's and warehouse's reports.

use std::collections::BTreeMap;

use statemachine::Machine as _;

use super::payments::{PaymentCommand, PaymentRun, Stepped};
use super::rules::retry;
use super::{Engine, rollup};
use crate::error::{OperationError, StoreError};
use crate::order::{Machine, Operation, State};
use crate::payment::PaymentError;
use crate::payment::machine::{ActorKind as PaymentActor, Event as PaymentEvent};
use crate::store::{Movement, NewPayment, StoreTx};
use crate::types::{ItemId, NewOrder, Order, OrderId, OrderItem, Payment, ProductId, ShipmentId};

/// A line of a parcel: how many units of which order line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShipmentLine {
    pub item: ItemId,
    pub quantity: i64,
}

/// The result of asking the processor to authorize an order's total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentAttempt {
    pub payment: Payment,
    /// `authorized`, `declined` or `failed` (both `failed` in payment.fsm); the
    /// payment's state when the answer had been recorded already.
    pub outcome: String,
    /// The attempt was the last one allowed and failed: the system cancelled the order
    /// with reason `payment_failed`.
    pub order_cancelled: bool,
}

type Tx = Box<dyn StoreTx>;

impl Engine {
    /// Creates an order in the machine's initial state.
    pub async fn create_order(&self, order: &NewOrder) -> Result<Order, OperationError> {
        Ok(self
            .store
            .create_order(order, Machine::INITIAL, self.clock.now())
            .await?)
    }

    /// Begins a transaction and locks the order, which must exist.
    pub(super) async fn lock(&self, id: OrderId) -> Result<(Tx, Order), OperationError> {
        let mut tx = self.store.begin().await?;
        let order = tx
            .lock_order(id)
            .await?
            .ok_or(OperationError::OrderNotFound(id))?;
        Ok((tx, order))
    }

    /// Begins a transaction, locks the order and checks that `operation` is allowed in
    /// its state.
    async fn open(&self, id: OrderId, operation: Operation) -> Result<(Tx, Order), OperationError> {
        let (tx, order) = self.lock(id).await?;
        if !order.state.allows(operation) {
            return Err(OperationError::NotAllowed {
                operation,
                state: order.state,
                allowed_in: State::ALL
                    .into_iter()
                    .filter(|s| s.allows(operation))
                    .collect(),
            });
        }
        Ok((tx, order))
    }

    /// Writes the order back (compare-and-set) and commits.
    pub(super) async fn close(&self, mut tx: Tx, order: &Order) -> Result<(), OperationError> {
        if !tx.update_order(order, self.clock.now()).await? {
            return Err(OperationError::Invalid(format!(
                "order {} changed concurrently",
                order.id
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the order's lines (`modify_items`). In a state that holds stock the
    /// reservations follow: all are released, the new quantities reserved, and the
    /// whole change is refused if any product falls short.
    pub async fn modify_items(
        &self,
        id: OrderId,
        items: &[(&str, i64)],
    ) -> Result<Order, OperationError> {
        if items.is_empty() || items.iter().any(|(_, q)| *q <= 0) {
            return Err(OperationError::Invalid(
                "an order needs at least one line with a positive quantity".into(),
            ));
        }
        // Products are looked up before the transaction: a store with one connection
        // (a memory database) cannot serve a second query while it is open.
        let mut lines = Vec::new();
        for (sku, quantity) in items {
            let product = self
                .store
                .product(sku)
                .await?
                .ok_or_else(|| OperationError::Invalid(format!("unknown product `{sku}`")))?;
            lines.push((product, *quantity));
        }
        let (mut tx, mut order) = self.open(id, Operation::ModifyItems).await?;
        let now = self.clock.now();
        let held = tx.reserved_by(id).await?;
        let holds_stock = !held.is_empty();
        for (product, qty) in held {
            tx.move_stock(id, product, Movement::Release, qty, now)
                .await?;
        }
        if holds_stock {
            let mut wanted: BTreeMap<ProductId, (i64, &str)> = BTreeMap::new();
            for (product, qty) in &lines {
                wanted.entry(product.id).or_insert((0, &product.sku)).0 += qty;
            }
            let ids: Vec<ProductId> = wanted.keys().copied().collect();
            let stock = tx.lock_products(&ids).await?;
            for (product, (qty, sku)) in &wanted {
                if !tx.reserve(id, *product, *qty, now).await? {
                    let available = stock
                        .iter()
                        .find(|p| p.id == *product)
                        .map_or(0, |p| p.available());
                    return Err(OperationError::OutOfStock {
                        sku: (*sku).to_owned(),
                        requested: *qty,
                        available,
                    });
                }
            }
        }
        let priced: Vec<(ProductId, i64, i64)> = lines
            .iter()
            .map(|(p, q)| (p.id, *q, p.price_cents))
            .collect();
        tx.replace_items(id, &priced).await?;
        order.total_cents = priced.iter().map(|(_, q, price)| q * price).sum();
        self.close(tx, &order).await?;
        Ok(order)
    }

    /// Sets the shipping address (`change_address`).
    pub async fn change_address(&self, id: OrderId, address: &str) -> Result<(), OperationError> {
        let (tx, mut order) = self.open(id, Operation::ChangeAddress).await?;
        order.shipping_address = Some(address.to_owned());
        self.close(tx, &order).await
    }

    /// Adds a note to the order (`add_note`).
    pub async fn add_note(
        &self,
        id: OrderId,
        author: &str,
        body: &str,
    ) -> Result<(), OperationError> {
        let (mut tx, order) = self.open(id, Operation::AddNote).await?;
        tx.add_note(id, author, body, self.clock.now()).await?;
        self.close(tx, &order).await
    }

    /// Moves `items` into a new child order in the same state (`split`): their
    /// reservations move with them, and a paid order's capture is divided between the
    /// two so that each can be refunded on its own.
    pub async fn split(&self, id: OrderId, items: &[ItemId]) -> Result<Order, OperationError> {
        let (mut tx, mut parent) = self.open(id, Operation::Split).await?;
        let lines = tx.items(id).await?;
        let (moved, kept): (Vec<&OrderItem>, Vec<&OrderItem>) =
            lines.iter().partition(|l| items.contains(&l.id));
        if moved.len() != items.len() || moved.is_empty() || kept.is_empty() {
            return Err(OperationError::Invalid(
                "a split moves some, not all, of the order's own lines".into(),
            ));
        }
        let now = self.clock.now();
        let mut child = tx.insert_child_order(&parent, parent.state, now).await?;
        tx.move_items(items, child.id).await?;
        let held: BTreeMap<ProductId, i64> = tx.reserved_by(id).await?.into_iter().collect();
        let mut moving: BTreeMap<ProductId, i64> = BTreeMap::new();
        for line in &moved {
            *moving.entry(line.product).or_insert(0) += line.quantity - line.qty_shipped;
        }
        for (product, qty) in moving {
            let qty = qty.min(held.get(&product).copied().unwrap_or(0));
            if qty > 0 {
                tx.move_stock(id, product, Movement::Release, qty, now)
                    .await?;
                if !tx.reserve(child.id, product, qty, now).await? {
                    return Err(OperationError::Invalid(
                        "stock moved while splitting".into(),
                    ));
                }
            }
        }
        child.total_cents = moved.iter().map(|l| l.quantity * l.unit_price_cents).sum();
        parent.total_cents = kept.iter().map(|l| l.quantity * l.unit_price_cents).sum();
        self.allocate_capture(tx.as_mut(), &mut parent, &mut child, now)
            .await?;
        if !tx.update_order(&child, now).await? {
            return Err(OperationError::Invalid(
                "the new order changed concurrently".into(),
            ));
        }
        child.version += 1;
        self.close(tx, &parent).await?;
        Ok(child)
    }

    /// Ships some quantities of some lines (`add_shipment`): the units leave the shelf
    /// and their reservation in one ledger movement per product.
    pub async fn add_shipment(
        &self,
        id: OrderId,
        lines: &[ShipmentLine],
        carrier: &str,
        tracking: Option<&str>,
    ) -> Result<ShipmentId, OperationError> {
        let (mut tx, mut order) = self.open(id, Operation::AddShipment).await?;
        let items = tx.items(id).await?;
        let mut per_product: BTreeMap<ProductId, i64> = BTreeMap::new();
        for line in lines {
            let item = items.iter().find(|i| i.id == line.item).ok_or_else(|| {
                OperationError::Invalid(format!("line {} is not on order {id}", line.item))
            })?;
            let left = item.quantity - item.qty_shipped;
            if line.quantity <= 0 || line.quantity > left {
                return Err(OperationError::Invalid(format!(
                    "line {} has {left} unit(s) left to ship, not {}",
                    item.line_no, line.quantity
                )));
            }
            *per_product.entry(item.product).or_insert(0) += line.quantity;
        }
        if per_product.is_empty() {
            return Err(OperationError::Invalid(
                "a shipment holds at least one line".into(),
            ));
        }
        let now = self.clock.now();
        let pairs: Vec<(ItemId, i64)> = lines.iter().map(|l| (l.item, l.quantity)).collect();
        // An order whose reservation was released and not taken again (a refund the
        // processor reversed brings it back to `paid`) reserves what it ships first,
        // so the parcel never takes stock that others hold.
        let held: BTreeMap<ProductId, i64> = tx.reserved_by(id).await?.into_iter().collect();
        let ids: Vec<ProductId> = per_product.keys().copied().collect();
        let stock = tx.lock_products(&ids).await?;
        for (product, qty) in &per_product {
            let missing = qty - held.get(product).copied().unwrap_or(0);
            if missing > 0 && !tx.reserve(id, *product, missing, now).await? {
                let found = stock.iter().find(|p| p.id == *product);
                return Err(OperationError::OutOfStock {
                    sku: found.map_or_else(String::new, |p| p.sku.clone()),
                    requested: missing,
                    available: found.map_or(0, |p| p.available()),
                });
            }
        }
        let label = match (tracking, &self.carrier) {
            (None, Some(service)) => {
                // One key per parcel of the order, so a retried call gets the same label.
                let n = tx.shipments(id).await?.len() + 1;
                let key = format!("label:order:{id}:{n}");
                let reference = format!("{}-{n}", order.number);
                let label = service
                    .create_label(&key, &reference, now)
                    .await
                    .map_err(|err| {
                        OperationError::Invalid(format!("the carrier made no label: {err}"))
                    })?;
                Some(label.tracking_number)
            }
            _ => None,
        };
        let tracking = tracking.or(label.as_deref());
        let shipment = tx
            .insert_shipment(id, carrier, tracking, &pairs, now)
            .await?;
        for (product, qty) in per_product {
            tx.move_stock(id, product, Movement::Ship, qty, now).await?;
        }
        self.refresh_fulfillment(tx.as_mut(), &mut order).await?;
        self.close(tx, &order).await?;
        Ok(shipment)
    }

    /// The warehouse received the order's shipped units back.
    pub async fn receive_return(&self, id: OrderId) -> Result<(), OperationError> {
        let (mut tx, mut order) = self.lock(id).await?;
        if order.state != State::Returned {
            return Err(OperationError::Invalid(format!(
                "order {id} is `{}`; returns are received in `returned`",
                order.state
            )));
        }
        for item in tx.items(id).await? {
            tx.set_returned(item.id, item.qty_shipped).await?;
        }
        self.refresh_fulfillment(tx.as_mut(), &mut order).await?;
        self.close(tx, &order).await
    }

    /// The processor reports that the order's last refund was reversed (charged back
    /// to the shop's favour), which allows the `reverse_refund` override.
    pub async fn refund_reversed(&self, id: OrderId) -> Result<(), OperationError> {
        let (mut tx, mut order) = self.lock(id).await?;
        let refunds = tx.refunds(id).await?;
        let Some(last) = refunds.iter().rev().find(|r| r.state == "succeeded") else {
            return Err(OperationError::Invalid(format!(
                "order {id} has no refund to reverse"
            )));
        };
        let last = last.clone();
        self.reverse_refund_in(tx.as_mut(), &mut order, &last)
            .await?;
        self.close(tx, &order).await
    }

    /// Marks `refund` reversed under the order's lock: the money is the shop's again,
    /// and the rollup says so. A payment the refund had left `refunded` stays so in
    /// payment.fsm until an admin fires its `reverse_refund` (or refunds the order
    /// again, which does it first): `refund_reversed_by_processor` allows that now.
    pub(super) async fn reverse_refund_in(
        &self,
        tx: &mut dyn StoreTx,
        order: &mut Order,
        refund: &crate::types::Refund,
    ) -> Result<(), OperationError> {
        tx.update_refund_state(&refund.idempotency_key, "reversed")
            .await?;
        order.payment_status = rollup::current_payment_status(tx, order.id).await?;
        Ok(())
    }

    /// Asks the processor to authorize the order's total: the attempt is recorded
    /// (`initiated`) before the call, and its outcome (`authorize` or `fail` of
    /// payment.fsm) after it, each in a transaction of its own.
    ///
    /// Only a `confirmed` order (the one `pay` leaves from) is authorized, and a new
    /// authorization voids the one still open, so that they never pile up. A payment
    /// still `initiated` (its answer was lost, or support retried it) is asked about
    /// again under its own key rather than replaced.
    pub async fn authorize_payment(&self, id: OrderId) -> Result<PaymentAttempt, OperationError> {
        let mut tx = self.store.begin().await?;
        // The order's lock keeps two authorizations from racing for one attempt number.
        let mut order = tx
            .lock_order(id)
            .await?
            .ok_or(OperationError::OrderNotFound(id))?;
        if order.state != State::Confirmed {
            return Err(OperationError::Invalid(format!(
                "payments are authorized in `confirmed`; the order is `{}`",
                order.state
            )));
        }
        let payments = tx.payments(id).await?;
        let now = self.clock.now();
        // A new authorization replaces one still open (say, one whose capture was
        // declined): the old hold on the customer's card is released first.
        for open in payments.iter().filter(|p| p.state == "authorized").cloned() {
            let void = PaymentCommand::new(PaymentEvent::Void, PaymentActor::System)
                .key(format!("order-{id}-void-{}", open.id));
            self.step_payment_in(tx.as_mut(), &mut order, open, &void, now)
                .await?;
        }
        let waiting = payments
            .iter()
            .filter(|p| p.state == "initiated")
            .max_by_key(|p| p.attempt_no)
            .cloned();
        let payment = match waiting {
            Some(payment) => payment,
            None => {
                let key = format!("order-{id}-authorize-{}", payments.len() + 1);
                tx.insert_payment(&NewPayment {
                    order: id,
                    amount_cents: order.total_cents,
                    idempotency_key: &key,
                    at: now,
                })
                .await?
            }
        };
        self.close(tx, &order).await?;
        let processor = self.payments.clone();
        let (key, amount) = (payment.idempotency_key.clone(), payment.amount_cents);
        let result = retry(self.config.processor_retries, || {
            processor.authorize(&key, amount)
        })
        .await;
        self.crash_point(super::CrashPoint::Authorized);
        self.settle_authorization(payment, result).await
    }

    /// Records what the processor answered to an `initiated` payment's authorization:
    /// the processor's `authorize` or `fail` of payment.fsm. A payment that is no
    /// longer `initiated` (a webhook or reconciliation recorded the answer meanwhile)
    /// is left as it is.
    pub(super) async fn settle_authorization(
        &self,
        payment: Payment,
        result: Result<crate::payment::Authorization, PaymentError>,
    ) -> Result<PaymentAttempt, OperationError> {
        let id = payment.order;
        let (mut tx, mut order) = self.lock(id).await?;
        let current = tx
            .payments(id)
            .await?
            .into_iter()
            .find(|p| p.id == payment.id)
            .ok_or_else(|| OperationError::Invalid(format!("no payment {}", payment.id)))?;
        if current.state != "initiated" {
            tx.rollback().await?;
            let outcome = current.state.clone();
            return Ok(PaymentAttempt {
                payment: current,
                outcome,
                order_cancelled: false,
            });
        }
        let mut payment = current;
        let (event, outcome) = match result {
            Ok(authorization) => {
                payment.processor_ref = Some(authorization.reference);
                payment.fraud_review = authorization.review;
                (PaymentEvent::Authorize, "authorized")
            }
            Err(PaymentError::Declined { code }) => {
                payment.failure_code = Some(code);
                (PaymentEvent::Fail, "declined")
            }
            Err(other) => {
                payment.failure_code = Some(match other {
                    PaymentError::Timeout => "timeout".into(),
                    other => other.to_string(),
                });
                (PaymentEvent::Fail, "failed")
            }
        };
        let command = PaymentCommand::new(event, PaymentActor::Processor);
        let now = self.clock.now();
        let stepped = self
            .step_payment_in(tx.as_mut(), &mut order, payment, &command, now)
            .await?;
        self.close(tx, &order).await?;
        let order_cancelled = stepped.order_notified && self.cancel_if_exhausted(id).await;
        Ok(PaymentAttempt {
            payment: stepped.payment,
            outcome: outcome.to_owned(),
            order_cancelled,
        })
    }

    /// One payment transition in an operation's transaction, which holds the order's
    /// lock. Operations make no capture, so there is no effect to hand back.
    pub(super) async fn step_payment_in(
        &self,
        tx: &mut dyn StoreTx,
        order: &mut Order,
        payment: Payment,
        command: &PaymentCommand,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Stepped, OperationError> {
        let mut effects = Vec::new();
        let run = PaymentRun {
            tx,
            order,
            effects: &mut effects,
            now,
        };
        self.step_payment(run, payment, command)
            .await
            .map_err(OperationError::from)
    }

    /// After a declined or failed attempt: the system cancels the order, with reason
    /// `payment_failed`, once it has used up its attempts (`payment_attempts_exhausted`
    /// decides). Whether it did.
    pub(super) async fn cancel_if_exhausted(&self, id: OrderId) -> bool {
        let cancel =
            crate::types::Command::new(crate::order::Event::Cancel, crate::types::Actor::system())
                .reason(crate::order::Reason::PaymentFailed);
        match self.fire(id, cancel).await {
            Ok(_) => true,
            Err(crate::error::FireError::GuardFailed { .. }) => false,
            Err(error) => {
                tracing::warn!(order = %id, %error, "could not cancel after the last payment attempt");
                false
            }
        }
    }

    /// Divides a paid parent's capture through payment.fsm: the parent's payment
    /// gives the child's total away (`split_off`), and the child gets a payment that
    /// holds it under the same processor reference (`allocate`). Nothing is asked of
    /// the processor, which knows one payment.
    async fn allocate_capture(
        &self,
        tx: &mut dyn StoreTx,
        parent: &mut Order,
        child: &mut Order,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), OperationError> {
        let payments = tx.payments(parent.id).await?;
        let Some(captured) = payments
            .into_iter()
            .filter(|p| p.state == "captured")
            .max_by_key(|p| p.attempt_no)
        else {
            return Ok(());
        };
        let (from, reference) = (captured.id, captured.processor_ref.clone());
        let split_off = PaymentCommand::new(PaymentEvent::SplitOff, PaymentActor::System)
            .amount(child.total_cents)
            .metadata(serde_json::json!({ "child": child.id }));
        self.step_payment_in(tx, parent, captured, &split_off, now)
            .await?;
        let key = format!("order-{}-split-from-{from}", child.id);
        let allocation = tx
            .insert_payment(&NewPayment {
                order: child.id,
                amount_cents: child.total_cents,
                idempotency_key: &key,
                at: now,
            })
            .await?;
        let allocate = PaymentCommand::new(PaymentEvent::Allocate, PaymentActor::System)
            .record_only(reference)
            .metadata(serde_json::json!({ "parent": parent.id, "payment": from }));
        self.step_payment_in(tx, child, allocation, &allocate, now)
            .await?;
        Ok(())
    }

    async fn refresh_fulfillment(
        &self,
        tx: &mut dyn StoreTx,
        order: &mut Order,
    ) -> Result<(), StoreError> {
        let items = tx.items(order.id).await?;
        let shipments = tx.shipments(order.id).await?;
        order.fulfillment_status = rollup::fulfillment_status(&items, &shipments);
        Ok(())
    }
}
