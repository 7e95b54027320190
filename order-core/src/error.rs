//! Why a command was refused or failed: every error names the pipeline step and the
//! rule that refused.

use chrono::{DateTime, Utc};

use crate::order::{ActorKind, Event, Guard, Operation, State};
use crate::types::OrderId;

/// A storage adapter's failure: the database is unreachable, a constraint refused a
/// write, a row did not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    /// The database aborted the transaction because of a concurrent one (a
    /// serialization failure or a deadlock); running it again may succeed.
    #[error("transaction aborted by a concurrent one: {0}")]
    Retryable(String),
    /// A fault injected by a test double.
    #[error("injected fault: {0}")]
    Injected(String),
}

/// Database errors, with the ones that mean "a concurrent transaction got in the way,
/// run it again" told apart: PostgreSQL's serialization failure (SQLSTATE 40001) and
/// deadlock (40P01), and SQLite's busy and locked results after the busy timeout.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        let code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|c| c.into_owned());
        let retryable = match code.as_deref() {
            Some("40001" | "40P01") => true,
            // SQLite's primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), with
            // or without an extended code in the upper bits.
            Some(code) => code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
            None => false,
        };
        if retryable {
            StoreError::Retryable(err.to_string())
        } else {
            StoreError::Database(err)
        }
    }
}

/// The nine steps of a transition, in order; an error says which one refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    Idempotency,
    Lock,
    Candidates,
    Authorization,
    Window,
    Guards,
    Actions,
    Write,
    Commit,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Idempotency => "idempotency",
            Step::Lock => "lock",
            Step::Candidates => "candidates",
            Step::Authorization => "authorization",
            Step::Window => "window",
            Step::Guards => "guards",
            Step::Actions => "actions",
            Step::Write => "write",
            Step::Commit => "commit",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn next_opening(at: &Option<DateTime<Utc>>) -> String {
    match at {
        Some(at) => format!("it next opens at {}", at.format("%Y-%m-%d %H:%M UTC")),
        None => "it never opens".to_owned(),
    }
}

pub(crate) fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why `Engine::fire` did not move the order.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FireError {
    #[error("order {0} does not exist")]
    OrderNotFound(OrderId),
    #[error(
        "`{event}` is not a transition from `{state}`; {actor} may fire: {}",
        list(available)
    )]
    InvalidTransition {
        state: State,
        event: Event,
        actor: ActorKind,
        /// The events this actor may fire from this state.
        available: Vec<Event>,
    },
    #[error(
        "`{actor}` may not fire `{event}` from `{state}`; allowed: {}",
        list(allowed)
    )]
    ActorNotAllowed {
        state: State,
        event: Event,
        actor: ActorKind,
        allowed: Vec<ActorKind>,
    },
    #[error("customer `{actor}` does not own order {order}")]
    NotOwner { order: OrderId, actor: String },
    #[error("`{principal}` does not hold the `{role}` role")]
    MissingRole { principal: String, role: ActorKind },
    #[error("`{role}` must say who they are (`{role}:NAME`)")]
    MissingPrincipal { role: ActorKind },
    #[error("`{event}` by `{actor}` requires a reason")]
    ReasonRequired { event: Event, actor: ActorKind },
    #[error(
        "`{event}` is only allowed within `{calendar}`; {}",
        next_opening(next_open)
    )]
    OutsideWindow {
        event: Event,
        calendar: &'static str,
        next_open: Option<DateTime<Utc>>,
    },
    #[error("guard `{guard}` was {value} in `when {expression}` of `{event}`")]
    GuardFailed {
        event: Event,
        guard: Guard,
        value: bool,
        expression: String,
    },
    #[error("guard `{guard}` failed: {message}")]
    GuardError { guard: String, message: String },
    #[error("action `{action}` failed: {message}")]
    ActionFailed { action: String, message: String },
    #[error("order {order} changed concurrently (expected version {expected})")]
    Conflict { order: OrderId, expected: i64 },
    #[error("{step} failed: {source}")]
    Store {
        step: Step,
        #[source]
        source: StoreError,
    },
}

impl FireError {
    /// The pipeline step that refused or failed.
    pub fn step(&self) -> Step {
        match self {
            FireError::OrderNotFound(_) | FireError::Conflict { .. } => Step::Lock,
            FireError::InvalidTransition { .. } => Step::Candidates,
            FireError::ActorNotAllowed { .. }
            | FireError::NotOwner { .. }
            | FireError::MissingRole { .. }
            | FireError::MissingPrincipal { .. }
            | FireError::ReasonRequired { .. } => Step::Authorization,
            FireError::OutsideWindow { .. } => Step::Window,
            FireError::GuardFailed { .. } | FireError::GuardError { .. } => Step::Guards,
            FireError::ActionFailed { .. } => Step::Actions,
            FireError::Store { step, .. } => *step,
        }
    }

    /// A stable name for the kind of error, recorded in `transition_attempts`.
    pub fn kind(&self) -> &'static str {
        match self {
            FireError::OrderNotFound(_) => "order_not_found",
            FireError::InvalidTransition { .. } => "invalid_transition",
            FireError::ActorNotAllowed { .. } => "actor_not_allowed",
            FireError::NotOwner { .. } => "not_owner",
            FireError::MissingRole { .. } => "missing_role",
            FireError::MissingPrincipal { .. } => "missing_principal",
            FireError::ReasonRequired { .. } => "reason_required",
            FireError::OutsideWindow { .. } => "outside_window",
            FireError::GuardFailed { .. } => "guard_failed",
            FireError::GuardError { .. } => "guard_error",
            FireError::ActionFailed { .. } => "action_failed",
            FireError::Conflict { .. } => "conflict",
            FireError::Store { .. } => "store",
        }
    }

    /// Whether running the command again may succeed: the database aborted it because
    /// of a concurrent transaction, or a concurrent write won the version check.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            FireError::Conflict { .. }
                | FireError::Store {
                    source: StoreError::Retryable(_),
                    ..
                }
        )
    }

    pub(crate) fn store(step: Step) -> impl FnOnce(StoreError) -> FireError {
        move |source| FireError::Store { step, source }
    }
}

/// Why an operation on an order (modify items, change address, split, ...) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    #[error("order {0} does not exist")]
    OrderNotFound(OrderId),
    #[error(
        "`{operation}` is not allowed in `{state}`; it is allowed in: {}",
        list(allowed_in)
    )]
    NotAllowed {
        operation: Operation,
        state: State,
        allowed_in: Vec<State>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("not enough stock of `{sku}`: {requested} requested, {available} available")]
    OutOfStock {
        sku: String,
        requested: i64,
        available: i64,
    },
    #[error("payment processor: {0}")]
    Payment(String),
    /// A payment's own machine (payment.fsm) refused or failed, saying why.
    #[error("payment: {0}")]
    PaymentMachine(#[from] crate::engine::PaymentFireError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::engine::machine::Refusal<crate::order::Machine>> for FireError {
    fn from(refusal: crate::engine::machine::Refusal<crate::order::Machine>) -> FireError {
        use crate::engine::machine::Refusal;
        match refusal {
            Refusal::InvalidTransition {
                state,
                event,
                actor,
                available,
            } => FireError::InvalidTransition {
                state,
                event,
                actor,
                available,
            },
            Refusal::ActorNotAllowed {
                state,
                event,
                actor,
                allowed,
            } => FireError::ActorNotAllowed {
                state,
                event,
                actor,
                allowed,
            },
            Refusal::ReasonRequired { event, actor } => FireError::ReasonRequired { event, actor },
            Refusal::OutsideWindow {
                event,
                calendar,
                next_open,
            } => FireError::OutsideWindow {
                event,
                calendar,
                next_open,
            },
            Refusal::GuardFailed {
                event,
                guard,
                value,
                expression,
            } => FireError::GuardFailed {
                event,
                guard,
                value,
                expression,
            },
        }
    }
}
