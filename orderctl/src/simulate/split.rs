//! Split orders: now and then the shop moves some of an order's lines into a new
//! order of their own (`Engine::split`), in `pending` or `confirmed`. The new order
//! starts in its parent's state with the reservations of its lines; from then on it
//! lives a life of its own with an agent of its own, which the world adds after the
//! step.
//!
//! An order split in `paid` gives its child part of the capture: a payment under the
//! parent's processor reference, so the processor's webhooks for that reference
//! (`refunded`, `chargeback`, `refund_reversed`) are matched against both orders'
//! payments and refunds.
//!
//! Which orders split, in which state and which lines move is drawn from (seed, order),
//! and the new agent's seed from (seed, order, step). A split inserts an order, so it
//! runs among the steps that run alone in id order: the new order's id, from which its
//! agent draws, is then the same whatever the number of workers.

use chrono::{DateTime, Utc};
use order_core::order::State;
use order_core::{Engine, ItemId, OrderId};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::World;
use super::agent::{Agent, StepReport};
use super::payments::{chance, draw};

/// The share of orders that are split once they reach the state drawn for them, if
/// they have two lines or more by then.
const SPLIT_RATE: f64 = 0.05;

/// The states the simulation splits orders in: those of `allow split` in order.fsm.
const SPLIT_STATES: [State; 3] = [State::Pending, State::Confirmed, State::Paid];

/// An order a split made: who ordered it and the seed of its agent.
#[derive(Debug)]
pub struct Child {
    pub id: OrderId,
    pub customer: String,
    pub seed: u64,
}

impl Agent {
    /// Whether the step the order takes in `state` splits it: once per order, for a
    /// drawn share of orders, in the state drawn for it, when nothing of a payment is
    /// left waiting (a crash in doubt, an authorization to capture, a retry to make),
    /// so that the split does not fall between two halves of one payment.
    pub fn splits_now(&self, state: State) -> bool {
        let states = SPLIT_STATES.len() as u64;
        let at = SPLIT_STATES[(draw(self.seed, self.id, "split_state", 0) % states) as usize];
        !self.split
            && !self.persona.abandons
            && state == at
            && self.in_doubt.is_none()
            && !self.resume_payment
            && self.declined.is_none()
            && chance(self.seed, self.id, "split", 0) < SPLIT_RATE
    }

    /// Moves some of the order's lines, one or more but not all, into a new order.
    /// Whether it did: an order with a single line stays whole, and its step goes on as
    /// usual.
    pub(super) async fn split(&mut self, engine: &Engine, report: &mut StepReport) -> bool {
        self.split = true;
        let mut lines = match engine.store().items(self.id).await {
            Ok(lines) => lines,
            Err(err) => {
                report.unexpected.push(format!("items: {err}"));
                return false;
            }
        };
        if lines.len() < 2 {
            return false;
        }
        lines.sort_by_key(|line| line.line_no);
        // A run of one to all but one lines, starting anywhere and wrapping around.
        let n = lines.len();
        let moving = 1 + (draw(self.seed, self.id, "split_lines", 0) as usize) % (n - 1);
        let first = (draw(self.seed, self.id, "split_first", 0) as usize) % n;
        let items: Vec<ItemId> = (0..moving).map(|k| lines[(first + k) % n].id).collect();
        match engine.split(self.id, &items).await {
            Ok(child) => {
                report.child = Some(Child {
                    id: child.id,
                    customer: self.customer.clone(),
                    seed: draw(self.seed, self.id, "split_child", self.steps),
                });
                true
            }
            Err(err) => {
                report.unexpected.push(format!("split: {err}"));
                false
            }
        }
    }
}

impl World {
    /// Gives a new order from a split an agent of its own, which first acts within the
    /// hour of `now`. Agents are added in the order of the splits, which run in id
    /// order, so the agents stay in the order of their ids.
    pub(super) fn adopt(&mut self, child: Child, now: DateTime<Utc>) {
        let mut rng = SmallRng::seed_from_u64(child.seed);
        let agent = Agent::new(
            child.id,
            child.customer,
            child.seed,
            &mut rng,
            now,
            self.crash_rate,
        );
        self.agents.push(agent);
        self.tally.splits += 1;
        self.progress.inc_length(1);
    }
}
