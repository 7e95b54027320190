//! The static description of a machine: its transition table, hooks and calendars.

use std::fmt;

use crate::{Calendar, GuardExpr, Name};

/// A machine compiled from a `.fsm` file: the generated `Machine` type implements it.
///
/// Everything here is static data and table lookups; running a transition (locking,
/// authorizing, evaluating guards, running actions, auditing) is the engine's job.
pub trait Machine: Copy + fmt::Debug + Send + Sync + 'static {
    type State: Name;
    type Event: Name;
    type ActorKind: Name;
    type Reason: Name;
    type Guard: Name;
    type Action: Name;
    type Notification: Name;
    type Operation: Name;

    /// The machine's name as declared (`machine Order` gives `"Order"`).
    const NAME: &'static str;
    /// The SHA-256 of the `.fsm` source in hex, recorded in audit trails so that every
    /// transition says which definition allowed it.
    const SOURCE_HASH: &'static str;
    /// The initial state.
    const INITIAL: Self::State;
    /// Every declaration, one entry per source state, grouped by (state, event) and in
    /// file order within a group: the order in which candidates are tried.
    const TRANSITIONS: &'static [TransitionSpec<Self>];
    /// The calendars of `within` clauses, in file order.
    const CALENDARS: &'static [Calendar];

    /// The declarations of `event` from `state`, in the order they are tried; empty when
    /// the event does not exist from that state.
    fn candidates(state: Self::State, event: Self::Event) -> &'static [TransitionSpec<Self>];

    /// The events that `actor` is listed for from `state` (guards and windows aside), in
    /// file order.
    fn available_events(state: Self::State, actor: Self::ActorKind) -> &'static [Self::Event];

    /// What runs on every transition into `state`.
    fn on_enter(state: Self::State) -> &'static HookSpec<Self>;

    /// What runs on every transition out of `state`.
    fn on_exit(state: Self::State) -> &'static HookSpec<Self>;

    /// Whether `actor` is an owner, staff or a trusted service.
    fn actor_class(actor: Self::ActorKind) -> ActorClass;

    /// The calendar named `name`.
    fn calendar(name: &str) -> Option<&'static Calendar> {
        Self::CALENDARS.iter().find(|c| c.name == name)
    }
}

/// How the runtime checks an actor (`actor a owner`, `actor a staff`, `actor a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActorClass {
    /// Every use is checked against the entity's owner.
    Owner,
    /// An authenticated member of staff who must hold this role.
    Staff,
    /// A trusted service: the system, a carrier, a payment processor.
    Service,
}

/// One declaration of the table for one source state: `on event: from -> to { ... }`.
pub struct TransitionSpec<M: Machine> {
    pub from: M::State,
    pub event: M::Event,
    pub to: M::State,
    /// The `by` clause: who may fire it, and who must give a reason.
    pub actors: &'static [ActorRule<M::ActorKind>],
    /// The `when` clause.
    pub guard: Option<&'static GuardExpr<M::Guard>>,
    /// The `do` clause, in order.
    pub actions: &'static [ActionSpec<M::Action>],
    /// The `emit` clause, in order.
    pub emits: &'static [M::Notification],
    /// The calendar of the `within` clause, an index into [`Machine::CALENDARS`].
    pub window: Option<usize>,
    /// Declared with `override`: marked as such in the audit trail.
    pub is_override: bool,
    /// The 1-based line of the declaration in the `.fsm` file.
    pub line: u32,
}

impl<M: Machine> TransitionSpec<M> {
    /// The `by` entry for `actor`, if the actor is listed.
    pub fn rule_for(&self, actor: M::ActorKind) -> Option<&'static ActorRule<M::ActorKind>> {
        self.actors.iter().find(|rule| rule.actor == actor)
    }

    /// The calendar of the `within` clause.
    pub fn calendar(&self) -> Option<&'static Calendar> {
        self.window.and_then(|index| M::CALENDARS.get(index))
    }

    /// A self-loop neither leaves nor enters its state, so it runs no hooks.
    pub fn is_self_loop(&self) -> bool {
        self.from == self.to
    }
}

impl<M: Machine> fmt::Debug for TransitionSpec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitionSpec")
            .field("from", &self.from)
            .field("event", &self.event)
            .field("to", &self.to)
            .field("actors", &self.actors)
            .field("guard", &self.guard)
            .field("actions", &self.actions)
            .field("emits", &self.emits)
            .field("window", &self.calendar().map(|c| c.name))
            .field("is_override", &self.is_override)
            .field("line", &self.line)
            .finish()
    }
}

/// An entry of a `by` clause: `support(reason)` is `{ actor: Support, needs_reason: true }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActorRule<A> {
    pub actor: A,
    /// The actor must give one of the machine's reason codes.
    pub needs_reason: bool,
}

/// An entry of a `do` clause: `capture_payment undo refund_payment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionSpec<A> {
    pub action: A,
    /// Run, in reverse order of completion, when a later step or the commit fails.
    pub undo: Option<A>,
}

/// The `do` and `emit` of `enter state { ... }` or `exit state { ... }` hooks, merged in
/// file order when a state has several.
pub struct HookSpec<M: Machine> {
    pub actions: &'static [ActionSpec<M::Action>],
    pub emits: &'static [M::Notification],
}

impl<M: Machine> HookSpec<M> {
    /// The hook of a state that has none.
    pub const EMPTY: HookSpec<M> = HookSpec {
        actions: &[],
        emits: &[],
    };

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.emits.is_empty()
    }
}

impl<M: Machine> fmt::Debug for HookSpec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookSpec")
            .field("actions", &self.actions)
            .field("emits", &self.emits)
            .finish()
    }
}
