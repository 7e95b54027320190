//! The append-only records, read alike on both databases: the audit trails of orders
//! and of their payments and parcels, the refused commands, and the inbox and outbox
//! messages. The trails' metadata and the outbox payload are JSON, which SQLite and
//! PostgreSQL store differently ([`JsonColumn`]); the inbox payload is TEXT on both,
//! kept as received.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};

use super::{JsonColumn, json, parse};
use crate::error::StoreError;
use crate::order::State;
use crate::store::Result;
use crate::types::{
    Attempt, EntityTransition, InboxMessage, OrderId, OutboxMessage, TransitionRecord,
};

/// An entity's (machine `$1`, id `$2`) own audit trail, in sequence order.
pub(in crate::store) const ENTITY_TRAIL: &str = "SELECT machine, entity_id, order_id, seq, event, \
         from_state, to_state, actor_kind, actor_id, reason, is_override, machine_hash, \
         external_id, metadata, created_at \
     FROM entity_transitions WHERE machine = $1 AND entity_id = $2 ORDER BY seq";

/// An order's (`$1`) audit trail, in sequence order.
pub(in crate::store) const HISTORY: &str = "SELECT order_id, seq, event, from_state, to_state, \
         actor_kind, actor_id, reason, note, is_override, machine_hash, idempotency_key, \
         metadata, created_at \
     FROM order_transitions WHERE order_id = $1 ORDER BY seq";

/// An order's (`$1`) refused or failed commands, oldest first.
pub(in crate::store) const ATTEMPTS: &str = "SELECT order_id, event, actor_kind, actor_id, error_kind, \
         error, created_at \
     FROM transition_attempts WHERE order_id = $1 ORDER BY id";

/// The columns of [`InboxRow`].
pub(in crate::store) const INBOX_COLUMNS: &str =
    "source, external_id, payload, received_at, processed_at, outcome";

/// The columns of [`MessageRow`].
pub(in crate::store) const MESSAGE_COLUMNS: &str =
    "id, aggregate_id, kind, payload, dedupe_key, attempts, created_at, delivered_at";

/// A row of an entity's own audit trail ([`ENTITY_TRAIL`]).
#[derive(Debug, FromRow)]
pub(in crate::store) struct EntityTransitionRow {
    machine: String,
    entity_id: i64,
    order_id: i64,
    seq: i64,
    event: String,
    from_state: String,
    to_state: String,
    actor_kind: String,
    actor_id: Option<String>,
    reason: Option<String>,
    is_override: bool,
    machine_hash: String,
    external_id: Option<String>,
    metadata: JsonColumn,
    created_at: DateTime<Utc>,
}

impl TryFrom<EntityTransitionRow> for EntityTransition {
    type Error = StoreError;

    fn try_from(row: EntityTransitionRow) -> Result<EntityTransition> {
        Ok(EntityTransition {
            machine: row.machine,
            entity: row.entity_id,
            order: OrderId(row.order_id),
            seq: row.seq,
            event: row.event,
            from: row.from_state,
            to: row.to_state,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            reason: row.reason,
            is_override: row.is_override,
            machine_hash: row.machine_hash,
            external_id: row.external_id,
            metadata: row.metadata.into_value("entity_transitions.metadata")?,
            at: row.created_at,
        })
    }
}

/// A row of an order's audit trail ([`HISTORY`]).
#[derive(Debug, FromRow)]
pub(in crate::store) struct TransitionRow {
    order_id: i64,
    seq: i64,
    event: String,
    from_state: String,
    to_state: String,
    actor_kind: String,
    actor_id: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    is_override: bool,
    machine_hash: String,
    idempotency_key: Option<String>,
    metadata: JsonColumn,
    created_at: DateTime<Utc>,
}

impl TryFrom<TransitionRow> for TransitionRecord {
    type Error = StoreError;

    fn try_from(row: TransitionRow) -> Result<TransitionRecord> {
        Ok(TransitionRecord {
            order: OrderId(row.order_id),
            seq: row.seq,
            event: parse("order_transitions.event", &row.event)?,
            from: parse::<State>("order_transitions.from_state", &row.from_state)?,
            to: parse::<State>("order_transitions.to_state", &row.to_state)?,
            actor_kind: parse("order_transitions.actor_kind", &row.actor_kind)?,
            actor_id: row.actor_id,
            reason: row
                .reason
                .map(|r| parse("order_transitions.reason", &r))
                .transpose()?,
            note: row.note,
            is_override: row.is_override,
            machine_hash: row.machine_hash,
            idempotency_key: row.idempotency_key,
            metadata: row.metadata.into_value("order_transitions.metadata")?,
            at: row.created_at,
        })
    }
}

/// A refused or failed command ([`ATTEMPTS`]).
#[derive(Debug, FromRow)]
pub(in crate::store) struct AttemptRow {
    order_id: i64,
    event: String,
    actor_kind: String,
    actor_id: Option<String>,
    error_kind: String,
    error: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = StoreError;

    fn try_from(row: AttemptRow) -> Result<Attempt> {
        Ok(Attempt {
            order: OrderId(row.order_id),
            event: parse("transition_attempts.event", &row.event)?,
            actor_kind: parse("transition_attempts.actor_kind", &row.actor_kind)?,
            actor_id: row.actor_id,
            error_kind: row.error_kind,
            error: row.error,
            at: row.created_at,
        })
    }
}

/// An inbox message ([`INBOX_COLUMNS`]). Its payload is TEXT on both databases (kept
/// as received), so it is parsed here on both.
#[derive(Debug, FromRow)]
pub(in crate::store) struct InboxRow {
    source: String,
    external_id: String,
    payload: String,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
}

impl TryFrom<InboxRow> for InboxMessage {
    type Error = StoreError;

    fn try_from(row: InboxRow) -> Result<InboxMessage> {
        Ok(InboxMessage {
            source: row.source,
            external_id: row.external_id,
            payload: json("inbox.payload", &row.payload)?,
            received_at: row.received_at,
            processed_at: row.processed_at,
            outcome: row.outcome,
        })
    }
}

/// An inbox message from a row holding [`INBOX_COLUMNS`].
pub(in crate::store) fn inbox_from_row<'r, R: Row>(row: &'r R) -> Result<InboxMessage>
where
    InboxRow: FromRow<'r, R>,
{
    InboxRow::from_row(row)?.try_into()
}

/// An outbox message ([`MESSAGE_COLUMNS`]).
#[derive(Debug, FromRow)]
pub(in crate::store) struct MessageRow {
    id: i64,
    aggregate_id: i64,
    kind: String,
    payload: JsonColumn,
    dedupe_key: String,
    attempts: i64,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<MessageRow> for OutboxMessage {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<OutboxMessage> {
        Ok(OutboxMessage {
            id: row.id,
            aggregate: OrderId(row.aggregate_id),
            kind: row.kind,
            payload: row.payload.into_value("outbox.payload")?,
            dedupe_key: row.dedupe_key,
            attempts: row.attempts,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        })
    }
}

/// An outbox message from a row holding [`MESSAGE_COLUMNS`].
pub(in crate::store) fn message_from_row<'r, R: Row>(row: &'r R) -> Result<OutboxMessage>
where
    MessageRow: FromRow<'r, R>,
{
    MessageRow::from_row(row)?.try_into()
}
