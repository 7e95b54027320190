//! The model's books: orders, stock, payments with the processor's side, refunds and
//! parcels, and how the machine's table and actions change them.

use super::*;

/// A payment attempt; `book` is the processor's book of its authorization.
#[derive(Clone, Debug)]
pub(super) struct Payment {
    pub(super) state: &'static str,
    pub(super) amount: i64,
    pub(super) book: usize,
    pub(super) review: bool,
    /// When the processor answered.
    pub(super) at: DateTime<Utc>,
}

/// The processor's books of one authorization.
#[derive(Clone, Debug, Default)]
pub(super) struct Book {
    pub(super) authorized: i64,
    pub(super) captured: i64,
    pub(super) refunded: i64,
    pub(super) voided: bool,
}

#[derive(Clone, Debug)]
pub(super) struct ModelOrder {
    pub(super) state: State,
    /// Product, quantity, shipped, returned.
    pub(super) lines: Vec<(usize, i64, i64, i64)>,
    pub(super) total: i64,
    /// What the order's ledger says it holds reserved, and has restocked, per product.
    pub(super) held: BTreeMap<usize, i64>,
    pub(super) restocked: BTreeMap<usize, i64>,
    pub(super) payments: Vec<Payment>,
    /// Payment (index), amount, `succeeded` or `reversed`.
    pub(super) refunds: Vec<(usize, i64, &'static str)>,
    pub(super) parcels: Vec<&'static str>,
    pub(super) delivered_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) now: DateTime<Utc>,
    /// SKU, price, on hand, reserved; in id order.
    pub(super) products: Vec<(String, i64, i64, i64)>,
    pub(super) books: Vec<Book>,
    pub(super) orders: Vec<ModelOrder>,
    pub(super) return_window: TimeDelta,
    /// How long an authorization can be captured (`authorization_valid`).
    pub(super) authorization_lifetime: TimeDelta,
    pub(super) max_attempts: usize,
}

/// What is compared per order: state, total, lines (SKU, quantity, shipped, returned),
/// stock held (SKU, quantity), payments and refunds (state, amount), parcel states.
pub(super) type Snap = (
    State,
    i64,
    Vec<(String, i64, i64, i64)>,
    Vec<(String, i64)>,
    Vec<(String, i64)>,
    Vec<(String, i64)>,
    Vec<String>,
);

pub(super) type Spec = TransitionSpec<Machine>;

pub(super) struct Facts<'a>(pub(super) &'a Model, pub(super) usize);

impl GuardCheck<Guard> for Facts<'_> {
    type Error = std::convert::Infallible;

    async fn check(&mut self, guard: Guard) -> Result<bool, Self::Error> {
        Ok(self.0.holds(self.1, guard))
    }
}

impl Model {
    pub(super) fn create(&mut self, lines: &[(&str, i64)]) {
        let product = |sku| {
            self.products
                .iter()
                .position(|p| p.0 == sku)
                .expect("a SKU")
        };
        let lines: Vec<_> = lines
            .iter()
            .map(|(sku, q)| (product(*sku), *q, 0, 0))
            .collect();
        self.orders.push(ModelOrder {
            state: State::Pending,
            total: lines.iter().map(|l| l.1 * self.products[l.0].1).sum(),
            lines,
            held: BTreeMap::new(),
            restocked: BTreeMap::new(),
            payments: Vec::new(),
            refunds: Vec::new(),
            parcels: Vec::new(),
            delivered_at: None,
        });
    }

    /// The order's quantities per product; `left`: only what is not shipped yet.
    pub(super) fn per_product(&self, o: usize, left: bool) -> BTreeMap<usize, i64> {
        let mut sums = BTreeMap::new();
        for (product, qty, shipped, _) in &self.orders[o].lines {
            *sums.entry(*product).or_insert(0) += qty - if left { *shipped } else { 0 };
        }
        sums
    }

    /// A guard's value, from the model's books.
    pub(super) fn holds(&self, o: usize, guard: Guard) -> bool {
        let order = &self.orders[o];
        let last = order.payments.last();
        let shipped: i64 = order.lines.iter().map(|l| l.2).sum();
        let returned: i64 = order.lines.iter().map(|l| l.3).sum();
        let failed = |p: &&Payment| p.state == "failed";
        let wanted = self.per_product(o, false);
        match guard {
            Guard::InventoryAvailable => {
                let available = |p: usize| self.products[p].2 - self.products[p].3;
                !wanted.is_empty() && wanted.iter().all(|(p, q)| available(*p) >= *q)
            }
            Guard::PaymentAuthorized => {
                last.is_some_and(|p| p.state == "authorized" && p.amount >= order.total)
            }
            Guard::FraudHold => last.is_some_and(|p| p.review),
            Guard::PaymentAttemptsExhausted => {
                order.payments.iter().filter(failed).count() >= self.max_attempts
            }
            Guard::AllItemsShipped => !wanted.is_empty() && order.lines.iter().all(|l| l.2 == l.1),
            Guard::AllShipmentsDelivered => {
                !order.parcels.is_empty() && order.parcels.iter().all(|s| *s == "delivered")
            }
            Guard::NoItemsShipped => shipped == 0,
            Guard::ReturnReceived => returned == shipped,
            Guard::WithinReturnWindow => {
                (order.delivered_at).is_some_and(|at| self.now <= at + self.return_window)
            }
            Guard::RefundReversedByProcessor => order.refunds.iter().any(|r| r.2 == "reversed"),
        }
    }

    /// Steps 3 to 6 of the pipeline by the table: the declaration that passes, or the
    /// error kind of the first refusal.
    pub(super) async fn admit(&self, o: usize, command: &Command) -> Result<&'static Spec, String> {
        let (kind, state) = (command.actor.kind, self.orders[o].state);
        let candidates = Machine::candidates(state, command.event);
        if candidates.is_empty() {
            return Err("invalid_transition".into());
        }
        let listed: Vec<&'static Spec> = candidates
            .iter()
            .filter(|s| s.rule_for(kind).is_some())
            .collect();
        if listed.is_empty() {
            return Err("actor_not_allowed".into());
        }
        let class = Machine::actor_class(kind);
        if command.actor != Shop::actor(kind) && class != ActorClass::Service {
            let refusal = if class == ActorClass::Owner {
                "not_owner"
            } else {
                "missing_role"
            };
            return Err(refusal.into());
        }
        let mut first_refusal = None;
        for spec in listed {
            let needs_reason = spec.rule_for(kind).is_some_and(|r| r.needs_reason);
            let refusal = if needs_reason && command.reason.is_none() {
                Some("reason_required".to_owned())
            } else if spec.calendar().is_some_and(|c| !c.is_open(self.now)) {
                Some("outside_window".to_owned())
            } else if let Some(guard) = spec.guard {
                let decision = statemachine::evaluate(guard, &mut Facts(self, o)).await;
                let decision = decision.unwrap_or_else(|never| match never {});
                (!decision.holds).then(|| format!("guard_failed:{}", decision.decided_by))
            } else {
                None
            };
            match refusal {
                None => return Ok(spec),
                Some(refusal) => first_refusal = first_refusal.or(Some(refusal)),
            }
        }
        Err(first_refusal.expect("a refusal when no declaration passed"))
    }

    /// The outcomes of the dry run (`check`) and of `fire`; the table's actions and hooks
    /// run on a copy of the books, kept only if all of them succeed.
    pub(super) async fn fire(&mut self, o: usize, command: &Command) -> (String, String) {
        let spec = match self.admit(o, command).await {
            Ok(spec) => spec,
            Err(refusal) => return (refusal.clone(), refusal),
        };
        let (exit, enter) = match spec.is_self_loop() {
            true => (&[][..], &[][..]),
            false => (
                Machine::on_exit(spec.from).actions,
                Machine::on_enter(spec.to).actions,
            ),
        };
        let mut next = self.clone();
        for action in spec.actions.iter().chain(exit).chain(enter) {
            if next.act(o, action.action, command.actor.kind).is_none() {
                return (
                    spec.to.to_string(),
                    format!("action_failed:{}", action.action),
                );
            }
        }
        next.orders[o].state = spec.to;
        if spec.to == State::Delivered {
            next.orders[o].delivered_at = Some(next.now);
        }
        *self = next;
        (spec.to.to_string(), spec.to.to_string())
    }

    /// An action by `actor`; `None` when the processor (or the stock) refuses, or a
    /// payment whose refund was reversed is refunded again by anyone but an admin.
    pub(super) fn act(&mut self, o: usize, action: Action, actor: ActorKind) -> Option<()> {
        let (wanted, total) = (self.per_product(o, false), self.orders[o].total);
        let (now, lifetime) = (self.now, self.authorization_lifetime);
        let Model {
            products,
            books,
            orders,
            ..
        } = self;
        let order = &mut orders[o];
        match action {
            Action::ReserveInventory => {
                for (p, q) in wanted {
                    let (_, _, on_hand, reserved) = &mut products[p];
                    (*on_hand - *reserved >= q).then_some(())?;
                    *reserved += q;
                    *order.held.entry(p).or_insert(0) += q;
                }
            }
            Action::ReleaseInventory => {
                for (p, held) in order.held.iter_mut().filter(|(_, q)| **q > 0) {
                    products[*p].3 -= std::mem::take(held);
                }
            }
            Action::CapturePayment => {
                let mut authorized = order
                    .payments
                    .iter_mut()
                    .filter(|p| p.state == "authorized");
                let payment = authorized.next_back()?;
                // payment.fsm's `capture` refuses a lapsed authorization.
                (now - payment.at < lifetime).then_some(())?;
                let book = &mut books[payment.book];
                (!book.voided && book.captured + total <= book.authorized).then_some(())?;
                book.captured += total;
                (payment.state, payment.amount) = ("captured", total);
            }
            Action::RefundPayment => {
                let mut refunds = Vec::new();
                for (i, payment) in order.payments.iter_mut().enumerate() {
                    let of_payment = order
                        .refunds
                        .iter()
                        .filter(|r| r.0 == i && r.2 != "reversed");
                    let due = payment.amount - of_payment.map(|r| r.1).sum::<i64>();
                    if !matches!(payment.state, "captured" | "refunded") || due <= 0 {
                        continue;
                    }
                    (payment.state == "captured" || actor == ActorKind::Admin).then_some(())?;
                    let book = &mut books[payment.book];
                    (book.refunded + due <= book.captured).then_some(())?;
                    book.refunded += due;
                    payment.state = "refunded";
                    refunds.push((i, due, "succeeded"));
                }
                order.refunds.extend(refunds);
            }
            Action::VoidAuthorization => {
                for payment in order
                    .payments
                    .iter_mut()
                    .filter(|p| p.state == "authorized")
                {
                    let book = &mut books[payment.book];
                    (!book.voided && book.captured == 0).then_some(())?;
                    (book.voided, payment.state) = (true, "voided");
                }
            }
            Action::RestockReturnedItems => {
                let mut returned = BTreeMap::new();
                for (product, _, _, qty) in &order.lines {
                    *returned.entry(*product).or_insert(0) += qty;
                }
                for (p, qty) in returned {
                    let restocked = order.restocked.entry(p).or_insert(0);
                    products[p].2 += (qty - *restocked).max(0);
                    *restocked = (*restocked).max(qty);
                }
            }
        }
        Some(())
    }

    /// Why `authorize_payment` refuses without calling the processor, if it does: only
    /// a `confirmed` order is authorized.
    pub(super) fn authorize_refusal(&self, o: usize) -> Option<String> {
        let order = &self.orders[o];
        (order.state != State::Confirmed).then(|| {
            format!(
                "error: payments are authorized in `confirmed`; the order is `{}`",
                order.state
            )
        })
    }

    /// An authorization attempt; after a failed one that used up the attempts, the
    /// system cancels the order (`payment_failed`), as the engine does.
    pub(super) async fn authorize(&mut self, o: usize, answer: Answer, review: bool) -> String {
        if let Some(refusal) = self.authorize_refusal(o) {
            return refusal;
        }
        // A new authorization voids the one still open.
        for payment in self.orders[o]
            .payments
            .iter_mut()
            .filter(|p| p.state == "authorized")
        {
            payment.state = "voided";
            if let Some(book) = self.books.get_mut(payment.book) {
                book.voided = true;
            }
        }
        let amount = self.orders[o].total;
        // The payment's state in payment.fsm, and what `authorize_payment` says.
        let (state, outcome, book) = match answer {
            Answer::Approve | Answer::Timeout => ("authorized", "authorized", self.books.len()),
            Answer::Decline => ("failed", "declined", usize::MAX),
            Answer::Outage => ("failed", "failed", usize::MAX),
        };
        if book != usize::MAX {
            self.books.push(Book {
                authorized: amount,
                ..Book::default()
            });
        }
        let review = review && book != usize::MAX;
        self.orders[o].payments.push(Payment {
            state,
            amount,
            book,
            review,
            at: self.now,
        });
        if state != "authorized" {
            let cancel = Command::new(Event::Cancel, Actor::system()).reason(Reason::PaymentFailed);
            let (_, fired) = self.fire(o, &cancel).await;
            if fired == State::Cancelled.to_string() {
                return format!("{outcome}, order cancelled");
            }
        }
        outcome.to_owned()
    }

    /// `add_shipment` of everything left: what the order does not hold reserved (after a
    /// reversed refund) is reserved first, or nothing happens; then the units leave the
    /// shelf and the reservation.
    pub(super) fn ship(&mut self, o: usize) -> &'static str {
        let mut left = self.per_product(o, true);
        left.retain(|_, q| *q > 0);
        let (products, order) = (&mut self.products, &mut self.orders[o]);
        if !order.state.allows(Operation::AddShipment) {
            return "not_allowed";
        } else if left.is_empty() {
            return "invalid";
        }
        let missing = |p: &usize, q: &i64| q - order.held.get(p).copied().unwrap_or(0);
        if left
            .iter()
            .any(|(p, q)| missing(p, q) > products[*p].2 - products[*p].3)
        {
            return "out_of_stock";
        }
        for (p, q) in left {
            let held = order.held.entry(p).or_insert(0);
            products[p].3 += (q - *held).max(0) - q;
            products[p].2 -= q;
            *held = (*held - q).max(0);
        }
        order.lines.iter_mut().for_each(|l| l.2 = l.1);
        order.parcels.push("label_created");
        "ok"
    }

    /// What must hold whatever the engine does: no order ships or releases more than it
    /// reserved, and no product has more reserved than on hand.
    pub(super) fn invariants(&self) -> Result<(), String> {
        for (o, order) in self.orders.iter().enumerate() {
            if let Some((p, held)) = order.held.iter().find(|(_, q)| **q < 0) {
                let (sku, state) = (&self.products[*p].0, order.state);
                return Err(format!(
                    "order #{o} in `{state}` holds {held} {sku} reserved"
                ));
            }
        }
        match self.products.iter().find(|p| p.3 < 0 || p.3 > p.2) {
            Some((sku, _, on_hand, held)) => Err(format!("{sku}: {held} of {on_hand} reserved")),
            None => Ok(()),
        }
    }

    pub(super) fn snapshot(&self, o: usize) -> Snap {
        let order = &self.orders[o];
        let sku = |p: usize| self.products[p].0.clone();
        let held = order.held.iter().filter(|(_, q)| **q != 0);
        (
            order.state,
            order.total,
            order
                .lines
                .iter()
                .map(|l| (sku(l.0), l.1, l.2, l.3))
                .collect(),
            held.map(|(p, q)| (sku(*p), *q)).collect(),
            order
                .payments
                .iter()
                .map(|p| (p.state.to_owned(), p.amount))
                .collect(),
            order
                .refunds
                .iter()
                .map(|r| (r.2.to_owned(), r.1))
                .collect(),
            order.parcels.iter().map(|s| s.to_string()).collect(),
        )
    }
}
