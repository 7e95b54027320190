//! The argument forms clap cannot check for us: order ids, the machine's names, actors,
//! order lines, parcels and free text. Each refusal is a [`UsageError`] (exit 2) of one
//! line that names the argument and, for the machine's names, lists every valid one.
//!
//! Clap only sees plain strings for these, so that a bad value gets this one-line
//! message rather than clap's multi-line usage block.

use std::fmt;
use std::str::FromStr;

use order_core::order::{ActorKind, Event, Machine, Reason, State};
use order_core::{Actor, ItemId, OrderId, ShipmentId, shipment};
use statemachine::{ActorClass, Machine as _, Name as _};

/// An argument that does not say what the command needs: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub type Result<T> = std::result::Result<T, UsageError>;

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// An order's id: a positive whole number.
pub fn order_id(text: &str) -> Result<OrderId> {
    match text.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(OrderId(id)),
        _ => Err(usage(format!(
            "an order id is a positive whole number, got `{text}`"
        ))),
    }
}

/// `1,2,3` as order ids.
pub fn order_ids(text: &str) -> Result<Vec<OrderId>> {
    list(text, "--ids")?
        .into_iter()
        .map(|part| order_id(part).map_err(|e| usage(format!("--ids: {e}"))))
        .collect()
}

pub fn event(text: &str) -> Result<Event> {
    Event::from_str(text).map_err(|e| usage(e.to_string()))
}

pub fn reason(text: &str) -> Result<Reason> {
    Reason::from_str(text).map_err(|e| usage(format!("--reason: {e}")))
}

/// `pending,paid` as states; `flag` names the option in messages.
pub fn states(text: &str, flag: &str) -> Result<Vec<State>> {
    list(text, flag)?
        .into_iter()
        .map(|part| State::from_str(part).map_err(|e| usage(format!("{flag}: {e}"))))
        .collect()
}

/// Comma-separated parts, none of them empty.
fn list<'a>(text: &'a str, flag: &str) -> Result<Vec<&'a str>> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(usage(format!(
            "{flag} takes a comma-separated list without empty entries, got `{text}`"
        )));
    }
    Ok(parts)
}

/// What `--as` accepts for machine `M`, from its actors: an owner says `kind:EMAIL`, a
/// member of staff `kind:NAME`, a service its bare kind (`customer:EMAIL, support:NAME,
/// ..., system, carrier` for the order machine).
fn actor_forms<M: statemachine::Machine>() -> String {
    M::ActorKind::ALL
        .iter()
        .map(|&kind| match M::actor_class(kind) {
            ActorClass::Owner => format!("{kind}:EMAIL"),
            ActorClass::Staff => format!("{kind}:NAME"),
            _ => kind.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `customer:EMAIL`, `support:NAME`, `admin:NAME`, `system`, `carrier`: an owner or a
/// member of staff says who they are; a service does not.
pub fn actor(text: &str) -> Result<Actor> {
    let (kind, id) = actor_of::<Machine>(text)?;
    Ok(Actor { kind, id })
}

/// An actor of `shipment.fsm`: `carrier`, `system`, `support:NAME`, `admin:NAME`.
pub fn shipment_actor(text: &str) -> Result<(shipment::ActorKind, Option<String>)> {
    actor_of::<shipment::Machine>(text)
}

/// An actor of `payment.fsm`: `processor`, `system`, `support:NAME`, `admin:NAME`.
pub fn payment_actor(
    text: &str,
) -> Result<(order_core::payment::machine::ActorKind, Option<String>)> {
    actor_of::<order_core::payment::machine::Machine>(text)
}

/// `kind` or `kind:WHO` as an actor of machine `M`, the name given exactly when the
/// machine needs one.
fn actor_of<M: statemachine::Machine>(text: &str) -> Result<(M::ActorKind, Option<String>)> {
    let (kind_text, id) = match text.split_once(':') {
        Some((kind, id)) => (kind, Some(id.trim())),
        None => (text, None),
    };
    // The forms say more than the bare kind names `UnknownName` would list.
    let kind = M::ActorKind::from_str(kind_text).map_err(|_| {
        usage(format!(
            "--as `{text}`: unknown actor `{kind_text}`; expected one of: {}",
            actor_forms::<M>()
        ))
    })?;
    let class = M::actor_class(kind);
    let names_someone = matches!(class, ActorClass::Owner | ActorClass::Staff);
    match id {
        Some(id) if names_someone && !id.is_empty() => Ok((kind, Some(id.to_owned()))),
        _ if names_someone => {
            let who = if class == ActorClass::Owner {
                "EMAIL"
            } else {
                "NAME"
            };
            Err(usage(format!(
                "--as `{text}`: `{kind}` must say who they are: `{kind}:{who}`"
            )))
        }
        Some(_) => Err(usage(format!(
            "--as `{text}`: `{kind}` takes no name; use `{kind}`"
        ))),
        None => Ok((kind, None)),
    }
}

/// A staff role of the machine (`support`, `admin`).
pub fn staff_role(text: &str) -> Result<ActorKind> {
    let roles: Vec<ActorKind> = ActorKind::ALL
        .iter()
        .copied()
        .filter(|&kind| Machine::actor_class(kind) == ActorClass::Staff)
        .collect();
    roles
        .iter()
        .copied()
        .find(|role| role.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            usage(format!(
                "--role: `{text}` is not a staff role; expected one of: {}",
                names.join(", ")
            ))
        })
}

/// `SKU:QTY`, the quantity a positive whole number.
pub fn item(text: &str) -> Result<(String, i64)> {
    let Some((sku, qty)) = text.rsplit_once(':') else {
        return Err(usage(format!(
            "--item `{text}` is not SKU:QTY (e.g. `{text}:1`)"
        )));
    };
    if sku.trim().is_empty() {
        return Err(usage(format!("--item `{text}` has no SKU before the `:`")));
    }
    match qty.trim().parse::<i64>() {
        Ok(qty) if qty > 0 => Ok((sku.trim().to_owned(), qty)),
        _ => Err(usage(format!(
            "--item `{text}`: the quantity after `:` must be a positive whole number"
        ))),
    }
}

/// A positive whole number, for the ids of lines and shipments; `what` names it.
fn row_id(text: &str, what: &str) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(usage(format!(
            "{what} is a positive whole number, got `{text}`"
        ))),
    }
}

/// An order line's id (as `order show` lists it), for `--line`.
pub fn line_id(text: &str) -> Result<ItemId> {
    row_id(text, "--line: a line id").map(ItemId)
}

/// `LINE_ID:QTY`, both positive whole numbers, for `shipment add --line`.
pub fn shipment_line(text: &str) -> Result<(ItemId, i64)> {
    let Some((line, qty)) = text.split_once(':') else {
        return Err(usage(format!(
            "--line `{text}` is not LINE_ID:QTY (e.g. `{text}:1`)"
        )));
    };
    let line = line_id(line)?;
    match qty.trim().parse::<i64>() {
        Ok(qty) if qty > 0 => Ok((line, qty)),
        _ => Err(usage(format!(
            "--line `{text}`: the quantity after `:` must be a positive whole number"
        ))),
    }
}

/// A shipment's id, as `order show` and `shipment add` print it.
pub fn shipment_id(text: &str) -> Result<ShipmentId> {
    row_id(text, "a shipment id").map(ShipmentId)
}

/// An event of `shipment.fsm`.
pub fn shipment_event(text: &str) -> Result<shipment::Event> {
    shipment::Event::from_str(text).map_err(|e| {
        usage(format!(
            "unknown shipment event `{text}`; expected one of: {}",
            e.expected.join(", ")
        ))
    })
}

/// A reason code of `shipment.fsm`.
pub fn shipment_reason(text: &str) -> Result<shipment::Reason> {
    shipment::Reason::from_str(text).map_err(|e| usage(format!("--reason: {e}")))
}

/// A payment's row id.
pub fn payment_id(text: &str) -> Result<order_core::PaymentId> {
    row_id(text, "a payment id").map(order_core::PaymentId)
}

/// An event of `payment.fsm`.
pub fn payment_event(text: &str) -> Result<order_core::payment::machine::Event> {
    order_core::payment::machine::Event::from_str(text).map_err(|e| {
        usage(format!(
            "unknown payment event `{text}`; expected one of: {}",
            e.expected.join(", ")
        ))
    })
}

/// A reason code of `payment.fsm`.
pub fn payment_reason(text: &str) -> Result<order_core::payment::machine::Reason> {
    order_core::payment::machine::Reason::from_str(text)
        .map_err(|e| usage(format!("--reason: {e}")))
}

/// An amount of money in cents, more than zero.
pub fn cents(amount: i64) -> Result<i64> {
    if amount <= 0 {
        return Err(usage(format!(
            "--amount {amount}: an amount is a positive number of cents"
        )));
    }
    Ok(amount)
}

/// Free text that must say something: an address, a note, an author, a carrier.
pub fn text<'a>(text: &'a str, what: &str) -> Result<&'a str> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(usage(format!("{what} cannot be empty")));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of a value that must be refused.
    fn refusal<T: std::fmt::Debug>(result: Result<T>) -> String {
        result.expect_err("refused").0
    }

    #[test]
    fn actors_take_a_name_exactly_when_the_machine_needs_one() {
        assert_eq!(
            actor("customer:ann@example.com"),
            Ok(Actor::customer("ann@example.com"))
        );
        assert_eq!(actor("support:sam"), Ok(Actor::support("sam")));
        assert_eq!(actor("system"), Ok(Actor::system()));
        assert_eq!(actor("carrier"), Ok(Actor::carrier()));
        let missing = refusal(actor("customer"));
        assert_eq!(
            missing,
            "--as `customer`: `customer` must say who they are: `customer:EMAIL`"
        );
        assert!(refusal(actor("admin:")).contains("`admin:NAME`"));
        assert!(refusal(actor("system:bot")).contains("takes no name"));
        let unknown = refusal(actor("boss:x"));
        assert!(unknown.contains("unknown actor `boss`"), "{unknown}");
        assert!(unknown.contains("customer:EMAIL, support:NAME, admin:NAME, system, carrier"));
    }

    #[test]
    fn shipment_actors_events_and_reasons_come_from_the_shipment_machine() {
        use order_core::shipment::{ActorKind as Kind, Event as ShipmentEvent, Reason as Why};
        assert_eq!(shipment_actor("carrier"), Ok((Kind::Carrier, None)));
        assert_eq!(
            shipment_actor("admin:ada"),
            Ok((Kind::Admin, Some("ada".to_owned())))
        );
        assert!(refusal(shipment_actor("support")).contains("`support:NAME`"));
        let unknown = refusal(shipment_actor("customer:ann@example.com"));
        assert_eq!(
            unknown,
            "--as `customer:ann@example.com`: unknown actor `customer`; \
             expected one of: carrier, system, support:NAME, admin:NAME"
        );
        assert_eq!(shipment_event("pick_up"), Ok(ShipmentEvent::PickUp));
        let event = refusal(shipment_event("teleport"));
        assert!(
            event
                .starts_with("unknown shipment event `teleport`; expected one of: pick_up, cancel"),
            "{event}"
        );
        assert_eq!(shipment_reason("lost_in_transit"), Ok(Why::LostInTransit));
        assert!(refusal(shipment_reason("whim")).contains("found_after_loss"));
    }

    #[test]
    fn items_are_sku_and_positive_quantity() {
        assert_eq!(item("MUG:2"), Ok(("MUG".to_owned(), 2)));
        assert_eq!(item("A:B:3"), Ok(("A:B".to_owned(), 3)));
        assert!(refusal(item("MUG")).contains("not SKU:QTY"));
        assert!(refusal(item("MUG:0")).contains("positive"));
        assert!(refusal(item(":2")).contains("no SKU"));
    }

    #[test]
    fn lines_shipments_and_texts() {
        assert_eq!(line_id("7"), Ok(ItemId(7)));
        assert!(refusal(line_id("x")).starts_with("--line: a line id is a positive"));
        assert_eq!(shipment_line("3:2"), Ok((ItemId(3), 2)));
        assert!(refusal(shipment_line("3")).contains("not LINE_ID:QTY (e.g. `3:1`)"));
        assert!(refusal(shipment_line("3:0")).contains("positive"));
        assert!(refusal(shipment_line("a:1")).contains("got `a`"));
        assert_eq!(shipment_id("2"), Ok(ShipmentId(2)));
        assert!(shipment_id("-2").is_err());
        assert_eq!(text("  Main St 1 ", "the address"), Ok("Main St 1"));
        assert_eq!(refusal(text(" ", "the note")), "the note cannot be empty");
    }

    #[test]
    fn names_list_the_valid_ones() {
        assert_eq!(
            states("pending, paid", "--state"),
            Ok(vec![State::Pending, State::Paid])
        );
        let err = refusal(states("pending,shiped", "--state"));
        assert!(err.starts_with("--state: unknown state `shiped`; expected one of: pending"));
        assert!(states("pending,", "--state").is_err());
        assert!(refusal(event("teleport")).contains("expected one of: confirm"));
        assert!(refusal(reason("whim")).contains("customer_request"));
        assert_eq!(staff_role("admin"), Ok(ActorKind::Admin));
        assert!(refusal(staff_role("customer")).contains("support, admin"));
        assert_eq!(order_ids("3,1"), Ok(vec![OrderId(3), OrderId(1)]));
        assert!(order_id("0").is_err());
        assert!(refusal(order_id("ORD-1")).contains("`ORD-1`"));
    }
}
