//! The order's rollups: where its money and its goods stand, derived from payments,
//! refunds, lines and shipments. Partial states live here, never as extra order states.

use crate::error::StoreError;
use crate::store::StoreTx;
use crate::types::{
    FulfillmentStatus, OrderId, OrderItem, Payment, PaymentStatus, Refund, Shipment,
};

/// Money captured and refunded, summed over the order's payments and refunds.
pub(crate) fn captured(payments: &[Payment]) -> i64 {
    payments
        .iter()
        .filter(|p| p.holds_capture())
        .map(|p| p.amount_cents)
        .sum()
}

pub(crate) fn refunded(refunds: &[Refund]) -> i64 {
    refunds
        .iter()
        .filter(|r| r.state == "succeeded")
        .map(|r| r.amount_cents)
        .sum()
}

pub(crate) fn payment_status(payments: &[Payment], refunds: &[Refund]) -> PaymentStatus {
    let captured = captured(payments);
    if captured > 0 {
        let refunded = refunded(refunds);
        return if refunded >= captured {
            PaymentStatus::Refunded
        } else if refunded > 0 {
            PaymentStatus::PartiallyRefunded
        } else {
            PaymentStatus::Captured
        };
    }
    match payments
        .iter()
        .max_by_key(|p| p.attempt_no)
        .map(|p| p.state.as_str())
    {
        Some("authorized") => PaymentStatus::Authorized,
        Some("voided") => PaymentStatus::Voided,
        Some("failed") => PaymentStatus::Declined,
        _ => PaymentStatus::None,
    }
}

/// The payment attempts that failed, over the order's payments: each `fail` in a
/// payment's trail (a payment retried by support fails more than once), and a `failed`
/// payment from before payments had trails once.
pub(crate) async fn failed_attempts(
    tx: &mut dyn StoreTx,
    payments: &[Payment],
) -> Result<usize, StoreError> {
    let mut failed = 0;
    for payment in payments {
        let trail = tx
            .entity_trail(super::payments::MACHINE, payment.id.0)
            .await?;
        let fails = trail.iter().filter(|row| row.event == "fail").count();
        failed += fails.max(usize::from(payment.state == "failed"));
    }
    Ok(failed)
}

/// The order's payment status as its payment and refund rows say now.
pub(crate) async fn current_payment_status(
    tx: &mut dyn StoreTx,
    order: OrderId,
) -> Result<PaymentStatus, StoreError> {
    let payments = tx.payments(order).await?;
    let refunds = tx.refunds(order).await?;
    Ok(payment_status(&payments, &refunds))
}

pub(crate) fn fulfillment_status(items: &[OrderItem], shipments: &[Shipment]) -> FulfillmentStatus {
    let ordered: i64 = items.iter().map(|i| i.quantity).sum();
    let shipped: i64 = items.iter().map(|i| i.qty_shipped).sum();
    let returned: i64 = items.iter().map(|i| i.qty_returned).sum();
    if shipped == 0 {
        FulfillmentStatus::Unfulfilled
    } else if returned >= shipped {
        FulfillmentStatus::Returned
    } else if shipped < ordered {
        FulfillmentStatus::PartiallyShipped
    } else if shipments.iter().all(|s| s.state == "delivered") {
        FulfillmentStatus::Delivered
    } else {
        FulfillmentStatus::Shipped
    }
}
