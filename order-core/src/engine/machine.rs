//! The machine-level steps of the pipeline, generic over [`Machine`]: which
//! declarations apply (3), who may fire them (4), the reason rule (4), the window (5),
//! the guards (6) and the hooks that run after the actions (7). The order, every
//! payment and every shipment run through these same functions; what differs per
//! machine is the row it locks, its guards and actions, and its audit trail.

use std::future::Future;

use chrono::{DateTime, Utc};
use statemachine::{ActionSpec, ActorClass, Decision, GuardExpr, Machine, TransitionSpec};

use super::Engine;
use crate::error::StoreError;
use crate::types::OrderId;

/// Why a machine's table refused a command, in the machine's own names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal<M: Machine> {
    #[error(
        "`{event}` is not a transition from `{state}`; {actor} may fire: {}",
        crate::error::list(available)
    )]
    InvalidTransition {
        state: M::State,
        event: M::Event,
        actor: M::ActorKind,
        available: Vec<M::Event>,
    },
    #[error(
        "`{actor}` may not fire `{event}` from `{state}`; allowed: {}",
        crate::error::list(allowed)
    )]
    ActorNotAllowed {
        state: M::State,
        event: M::Event,
        actor: M::ActorKind,
        allowed: Vec<M::ActorKind>,
    },
    #[error("`{event}` by `{actor}` requires a reason")]
    ReasonRequired {
        event: M::Event,
        actor: M::ActorKind,
    },
    #[error(
        "`{event}` is only allowed within `{calendar}`; {}",
        crate::error::next_opening(next_open)
    )]
    OutsideWindow {
        event: M::Event,
        calendar: &'static str,
        next_open: Option<DateTime<Utc>>,
    },
    #[error("guard `{guard}` was {value} in `when {expression}` of `{event}`")]
    GuardFailed {
        event: M::Event,
        guard: M::Guard,
        value: bool,
        expression: String,
    },
}

/// The builder methods a payment's and a parcel's command share, for a struct with
/// the fields `actor_id`, `reason` (of type `$reason`), `at`, `external_id` and
/// `metadata`.
macro_rules! entity_command_builders {
    ($command:ty, $reason:ty) => {
        impl $command {
            /// Who the staff member is (`support`, `admin`).
            pub fn by(mut self, id: &str) -> Self {
                self.actor_id = Some(id.to_owned());
                self
            }

            pub fn reason(mut self, reason: $reason) -> Self {
                self.reason = Some(reason);
                self
            }

            /// When it happened, if not now.
            pub fn at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
                self.at = Some(at);
                self
            }

            /// The inbox message or request that caused it.
            pub fn external_id(mut self, id: &str) -> Self {
                self.external_id = Some(id.to_owned());
                self
            }

            pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
                self.metadata = metadata;
                self
            }
        }
    };
}
pub(super) use entity_command_builders;

/// Why a command for a payment's or a parcel's own machine was refused or failed;
/// nothing of it was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntityError<M: Machine> {
    #[error("{} {entity} of order {order} does not exist", M::NAME.to_lowercase())]
    NotFound { order: OrderId, entity: i64 },
    /// The machine's table refused, saying which rule did.
    #[error(transparent)]
    Refused(#[from] Refusal<M>),
    #[error("`{principal}` does not hold the `{role}` role")]
    MissingRole {
        principal: String,
        role: M::ActorKind,
    },
    #[error("`{role}` must say who they are (`{role}:NAME`)")]
    MissingPrincipal { role: M::ActorKind },
    #[error("guard `{guard}` failed: {message}")]
    GuardError { guard: String, message: String },
    #[error("action `{action}` failed: {message}")]
    ActionFailed { action: String, message: String },
    #[error("the {} store failed: {source}", M::NAME.to_lowercase())]
    Store {
        #[from]
        source: StoreError,
    },
}

impl Engine {
    /// A staff actor of machine `M` must name a principal who holds the role. Staff
    /// roles are one directory for every machine: `support` in shipment.fsm and
    /// payment.fsm is the `support` of order.fsm.
    pub(super) async fn check_staff<M: Machine>(
        &self,
        actor: M::ActorKind,
        actor_id: Option<&str>,
    ) -> Result<(), EntityError<M>> {
        if M::actor_class(actor) != ActorClass::Staff {
            return Ok(());
        }
        let Some(principal) = actor_id else {
            return Err(EntityError::MissingPrincipal { role: actor });
        };
        let role = actor.to_string().parse::<crate::order::ActorKind>();
        let holds = match role {
            Ok(role) => self.authorizer.holds_role(principal, role).await?,
            Err(_) => false,
        };
        if holds {
            Ok(())
        } else {
            Err(EntityError::MissingRole {
                principal: principal.to_owned(),
                role: actor,
            })
        }
    }
}

/// Steps 3 and 4 of the table: the declarations of (state, event), in file order, that
/// list `actor`. Who the actor is (owner, role) is checked by the caller.
pub fn listed<M: Machine>(
    state: M::State,
    event: M::Event,
    actor: M::ActorKind,
) -> Result<Vec<&'static TransitionSpec<M>>, Refusal<M>> {
    let candidates = M::candidates(state, event);
    if candidates.is_empty() {
        return Err(Refusal::InvalidTransition {
            state,
            event,
            actor,
            available: M::available_events(state, actor).to_vec(),
        });
    }
    let listed: Vec<_> = candidates
        .iter()
        .filter(|spec| spec.rule_for(actor).is_some())
        .collect();
    if listed.is_empty() {
        let mut allowed: Vec<M::ActorKind> = candidates
            .iter()
            .flat_map(|spec| spec.actors.iter().map(|rule| rule.actor))
            .collect();
        allowed.sort();
        allowed.dedup();
        return Err(Refusal::ActorNotAllowed {
            state,
            event,
            actor,
            allowed,
        });
    }
    Ok(listed)
}

/// Evaluates a declaration's `when` expression for [`choose`].
pub trait Evaluate<M: Machine>: Send {
    /// Why a guard could not answer (as opposed to answering false).
    type Error: Send;

    fn evaluate(
        &mut self,
        expr: &'static GuardExpr<M::Guard>,
    ) -> impl Future<Output = Result<Decision<M::Guard>, Self::Error>> + Send;
}

/// Why [`choose`] picked no declaration.
#[derive(Debug)]
pub enum Unchosen<M: Machine, E> {
    /// The table refused: the first refusal among the listed declarations.
    Refused(Refusal<M>),
    /// A guard could not be evaluated: the transition fails rather than being refused.
    Error(E),
}

/// Steps 4 (reason), 5 and 6 for each listed declaration in file order: the first that
/// passes wins; when none does, the first refusal is the answer.
pub async fn choose<M: Machine, E: Evaluate<M>>(
    listed: &[&'static TransitionSpec<M>],
    actor: M::ActorKind,
    has_reason: bool,
    now: DateTime<Utc>,
    guards: &mut E,
) -> Result<&'static TransitionSpec<M>, Unchosen<M, E::Error>> {
    let mut first_refusal = None;
    for spec in listed {
        match admit(spec, actor, has_reason, now, guards).await {
            Ok(()) => return Ok(spec),
            Err(Unchosen::Refused(refusal)) => {
                first_refusal.get_or_insert(refusal);
            }
            Err(error) => return Err(error),
        }
    }
    let refusal = first_refusal.expect("choose is given at least one listed declaration");
    Err(Unchosen::Refused(refusal))
}

async fn admit<M: Machine, E: Evaluate<M>>(
    spec: &'static TransitionSpec<M>,
    actor: M::ActorKind,
    has_reason: bool,
    now: DateTime<Utc>,
    guards: &mut E,
) -> Result<(), Unchosen<M, E::Error>> {
    let needs_reason = spec.rule_for(actor).is_some_and(|rule| rule.needs_reason);
    if needs_reason && !has_reason {
        return Err(Unchosen::Refused(Refusal::ReasonRequired {
            event: spec.event,
            actor,
        }));
    }
    if let Some(calendar) = spec.calendar()
        && !calendar.is_open(now)
    {
        return Err(Unchosen::Refused(Refusal::OutsideWindow {
            event: spec.event,
            calendar: calendar.name,
            next_open: calendar.next_open(now),
        }));
    }
    if let Some(guard) = spec.guard {
        let decision = guards.evaluate(guard).await.map_err(Unchosen::Error)?;
        if !decision.holds {
            return Err(Unchosen::Refused(Refusal::GuardFailed {
                event: spec.event,
                guard: decision.decided_by,
                value: decision.value,
                expression: guard.to_string(),
            }));
        }
    }
    Ok(())
}

/// The actions that run after a transition's own: the exit hook of the state it leaves,
/// then the enter hook of the state it enters; none for a self-loop.
pub fn hook_actions<M: Machine>(
    spec: &'static TransitionSpec<M>,
) -> impl Iterator<Item = &'static ActionSpec<M::Action>> {
    let (exit, enter): (&[_], &[_]) = if spec.is_self_loop() {
        (&[], &[])
    } else {
        (M::on_exit(spec.from).actions, M::on_enter(spec.to).actions)
    };
    exit.iter().chain(enter.iter())
}

/// The notifications of a transition: its own, then the exit and enter hooks'.
pub fn emits<M: Machine>(spec: &'static TransitionSpec<M>) -> Vec<M::Notification> {
    let mut emits = spec.emits.to_vec();
    if !spec.is_self_loop() {
        emits.extend_from_slice(M::on_exit(spec.from).emits);
        emits.extend_from_slice(M::on_enter(spec.to).emits);
    }
    emits
}
