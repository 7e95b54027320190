//! What both adapters check of a payment's or a shipment's transition before they
//! write it ([`StoreTx::write_shipment_transition`](super::StoreTx::write_shipment_transition),
//! [`StoreTx::write_payment_transition`](super::StoreTx::write_payment_transition)),
//! and how they word a refusal.

use crate::error::StoreError;
use crate::store::{NewEntityTransition, Result};

/// The machine of `shipment.fsm`, as declared.
pub(crate) const SHIPMENT: &str = "Shipment";

/// The states of `shipment.fsm`: what the `shipments.state` CHECK constraint allows
/// (migration 0003). Checked before writing, so that PostgreSQL never aborts the
/// transaction over a state the constraint would refuse.
pub(crate) const SHIPMENT_STATES: [&str; 8] = [
    "label_created",
    "in_transit",
    "out_for_delivery",
    "failed_attempt",
    "delivered",
    "returned_to_sender",
    "lost",
    "cancelled",
];

/// The machine of `payment.fsm`, as declared.
pub(crate) const PAYMENT: &str = "Payment";

/// The states of `payment.fsm`: what the `payments.state` CHECK constraint allows
/// (migration 0005).
pub(crate) const PAYMENT_STATES: [&str; 7] = [
    "initiated",
    "authorized",
    "captured",
    "partially_refunded",
    "refunded",
    "failed",
    "voided",
];

/// The checks that need no database: the machine, the target state, the number.
pub(crate) fn check_shipment_row(row: &NewEntityTransition<'_>) -> Result<()> {
    check_row(row, SHIPMENT, &SHIPMENT_STATES)
}

/// The same checks for a payment's row.
pub(crate) fn check_payment_row(row: &NewEntityTransition<'_>) -> Result<()> {
    check_row(row, PAYMENT, &PAYMENT_STATES)
}

fn check_row(row: &NewEntityTransition<'_>, machine: &str, states: &[&str]) -> Result<()> {
    let what = || {
        format!(
            "cannot write audit row {} of {} {}",
            row.seq,
            machine.to_lowercase(),
            row.entity
        )
    };
    if row.machine != machine {
        return Err(StoreError::Invalid(format!(
            "{}: the machine is `{}`, not `{machine}`",
            what(),
            row.machine
        )));
    }
    if !states.contains(&row.to) {
        return Err(StoreError::Invalid(format!(
            "{}: `{}` is not a state of `{machine}`",
            what(),
            row.to
        )));
    }
    if row.seq <= 0 {
        return Err(StoreError::Invalid(format!(
            "{}: sequence numbers start at 1",
            what()
        )));
    }
    Ok(())
}

/// The shipment as a refused write found it: its order, its state, and its trail's last
/// sequence number (0 when it has none); `None` when there is no such shipment.
pub(crate) type Found = Option<(i64, String, i64)>;

/// Why the conditional write of `row` changed nothing, given what the shipment is.
pub(crate) fn shipment_refusal(row: &NewEntityTransition<'_>, found: Found) -> StoreError {
    let what = format!(
        "cannot write audit row {} of shipment {}",
        row.seq, row.entity
    );
    let why = match found {
        None => "no such shipment".to_owned(),
        Some((order, _, _)) if order != row.order.0 => {
            format!("it is on order {order}, not {}", row.order)
        }
        Some((_, state, _)) if state != row.from => {
            format!("it is in `{state}`, not `{}`", row.from)
        }
        Some((_, _, last)) if row.seq != last + 1 => format!(
            "entity_transitions seq must follow the entity's last one ({last}), got {}",
            row.seq
        ),
        Some(_) => "it changed meanwhile".to_owned(),
    };
    StoreError::Invalid(format!("{what}: {why}"))
}
