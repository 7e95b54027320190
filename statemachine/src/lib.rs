//! The runtime facade that code generated from `.fsm` files refers to.
//!
//! A crate depends on `statemachine` alone and compiles a machine with the re-exported
//! [`machine!`] macro:
//!
//! ```
//! pub mod order {
//!     // The path is relative to the crate's Cargo.toml.
//!     statemachine::machine!("../machines/order.fsm");
//! }
//!
//! use order::{ActorKind, Event, State};
//! use statemachine::Machine as _;
//!
//! let specs = order::Machine::candidates(State::Confirmed, Event::Cancel);
//! // Two declarations of `cancel` leave `confirmed`; they are tried in file order.
//! assert_eq!(specs.len(), 2);
//! assert_eq!(specs[0].to, State::Cancelled);
//! assert!(specs[0].rule_for(ActorKind::System).is_some_and(|rule| rule.needs_reason));
//!
//! assert_eq!(
//!     order::Machine::available_events(State::Shipped, ActorKind::Carrier),
//!     &[Event::Deliver, Event::ReturnToSender],
//! );
//! assert_eq!("paid".parse::<State>(), Ok(State::Paid));
//! assert!(State::Delivered.is_terminal());
//! assert!(State::Pending.allows(order::Operation::ModifyItems));
//! ```
//!
//! The macro generates, inside the calling module, one enum per kind of name (`State`,
//! `Event`, `ActorKind`, `Reason`, `Guard`, `Action`, `Notification`, `Operation`), the
//! `Guards` and `Actions` traits an application implements, and a `Machine` type that
//! implements [`Machine`] with the machine's static transition table. This crate holds
//! what that code refers to: the [`Machine`] and [`Name`] traits, the table's
//! [`TransitionSpec`], guard expressions and their short-circuit [`evaluate`],
//! processing-window [`Calendar`]s, and the error of parsing a name.
//!
//! **Invariant:** generated code names only `::statemachine::...` paths (what users
//! should not touch is under the hidden `__private` module), so it compiles in any crate
//! that depends on `statemachine`, whatever else that crate depends on.

mod calendar;
mod guard;
mod name;
mod spec;

pub use calendar::{Calendar, OpeningHours};
pub use guard::{Decision, GuardCheck, GuardExpr, evaluate};
pub use name::{Name, UnknownName};
pub use spec::{ActionSpec, ActorClass, ActorRule, HookSpec, Machine, TransitionSpec};
pub use statemachine_macros::machine;

/// The calendar types of this crate's API, so that users need not depend on chrono.
pub use chrono;
pub use chrono_tz;

/// What generated code needs and users should not touch.
#[doc(hidden)]
pub mod __private {
    pub use serde;

    use chrono::{NaiveDate, NaiveTime};

    /// A time of day in a constant. The macro only emits times that validation accepted.
    pub const fn time(hour: u32, minute: u32) -> NaiveTime {
        match NaiveTime::from_hms_opt(hour, minute, 0) {
            Some(time) => time,
            None => panic!("the macro emits only valid times"),
        }
    }

    /// A calendar date in a constant. The macro only emits dates that validation accepted.
    pub const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        match NaiveDate::from_ymd_opt(year, month, day) {
            Some(date) => date,
            None => panic!("the macro emits only valid dates"),
        }
    }
}
