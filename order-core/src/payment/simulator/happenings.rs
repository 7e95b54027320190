//! The processor's side of a payment: the events it records, the webhooks that tell
//! the shop about them, and the processor's own doings that tests and simulations
//! cause on demand.

use chrono::{DateTime, Utc};

use super::webhooks::Happening;
use super::{Simulator, rejected};
use crate::payment::{PaymentError, ProcessorEvent, ProcessorEventKind};

impl Simulator {
    /// Everything that happened to a payment, in `sequence` order, whether its
    /// webhooks were delivered yet or not: the processor's truth, for tests and
    /// reconciliation. `None` for an unknown payment.
    pub fn events(&self, reference: &str) -> Option<Vec<ProcessorEvent>> {
        let inner = self.lock();
        let book = inner.books.get(reference)?;
        Some(book.webhooks.events().cloned().collect())
    }

    /// The webhook deliveries due at `now` that were not delivered yet, in the order
    /// they arrive: the stream the shop's inbox receives. An event may come twice (with
    /// the same `external_id`) and after its payment's next one; none comes before it
    /// happened.
    pub fn webhooks_until(&self, now: DateTime<Utc>) -> Vec<ProcessorEvent> {
        let mut inner = self.lock();
        let mut due = Vec::new();
        for book in inner.books.values_mut() {
            due.extend(book.webhooks.take_due(now));
        }
        // Books are in a hash map: the reference, the sequence and the copy order the
        // deliveries due at the same instant, whatever the order they were taken in.
        due.sort_by(|a, b| a.arrival().cmp(&b.arrival()));
        due.into_iter().map(|delivery| delivery.event).collect()
    }

    /// The processor lets an authorization lapse: nobody captured it in time. The
    /// payment is voided, and the shop told by an `authorization_expired` webhook.
    /// Refused (`Rejected`) for an unknown payment, or one captured or voided.
    pub fn expire_authorization(&self, reference: &str) -> Result<ProcessorEvent, PaymentError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let book = inner.book(reference)?;
        if book.voided {
            return Err(rejected(format!("payment `{reference}` is already voided")));
        }
        if book.captured > 0 {
            return Err(rejected(format!(
                "payment `{reference}` has captured money; it does not lapse"
            )));
        }
        book.voided = true;
        let happening = Happening {
            kind: ProcessorEventKind::AuthorizationExpired,
            amount_cents: book.authorized,
            refund_reference: None,
        };
        inner.happen(&self.config, reference, happening, now)
    }

    /// The card holder's bank takes `amount_cents` of the captured money back: it counts
    /// as refunded, and the shop is told by a `chargeback` webhook. Refused
    /// (`Rejected`) for an unknown payment, an amount that is not positive, or one over
    /// what is captured and not yet refunded.
    pub fn chargeback(
        &self,
        reference: &str,
        amount_cents: i64,
    ) -> Result<ProcessorEvent, PaymentError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let book = inner.book(reference)?;
        if amount_cents <= 0 {
            let message = format!("amount must be positive, got {amount_cents}");
            return Err(rejected(message));
        }
        if book.refunded.saturating_add(amount_cents) > book.captured {
            return Err(rejected(format!(
                "chargeback of {amount_cents} exceeds what `{reference}` holds: \
                 {} captured, {} refunded",
                book.captured, book.refunded
            )));
        }
        book.refunded += amount_cents;
        let happening = Happening {
            kind: ProcessorEventKind::Chargeback,
            amount_cents,
            refund_reference: None,
        };
        inner.happen(&self.config, reference, happening, now)
    }

    /// The processor could not pay a refund out: its money is the shop's again, so the
    /// payment's refunded amount shrinks by it (and may be refunded anew), and the shop
    /// is told by a `refund_reversed` webhook. Refused (`Rejected`) for an unknown
    /// refund or one reversed already.
    pub fn reverse_refund(&self, refund_reference: &str) -> Result<ProcessorEvent, PaymentError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let unknown = || rejected(format!("unknown refund `{refund_reference}`"));
        let refund = inner.refunds.get(refund_reference).ok_or_else(unknown)?;
        if refund.reversed {
            return Err(rejected(format!(
                "refund `{refund_reference}` is already reversed"
            )));
        }
        let (payment, amount_cents) = (refund.payment.clone(), refund.amount_cents);
        let book = inner.book(&payment)?;
        book.refunded = book.refunded.saturating_sub(amount_cents).max(0);
        if let Some(refund) = inner.refunds.get_mut(refund_reference) {
            refund.reversed = true;
        }
        let happening = Happening {
            kind: ProcessorEventKind::RefundReversed,
            amount_cents,
            refund_reference: Some(refund_reference.to_owned()),
        };
        inner.happen(&self.config, &payment, happening, now)
    }
}
