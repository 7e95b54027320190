//! The world's clock: customers arrive, and every half hour of simulated time the
//! carrier's and the processor's news come in and the agents whose step is due take it.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use order_core::NewOrder;
use order_core::order::State;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::agent::{Agent, StepReport, competes_for_stock};
use super::{CATALOG, TICK, World, start_time};

impl World {
    /// Ticks the simulated clock in half hours until every order has settled.
    pub(super) async fn run(&mut self) -> anyhow::Result<()> {
        let arrivals_per_tick = (self.orders / 96).max(1);
        let mut created = 0;
        // A generous bound: no order needs more than a few weeks of simulated time.
        for n in 0..(96 * 120) {
            let now = order_core::clock::Clock::now(self.clock.as_ref());
            for _ in 0..arrivals_per_tick.min(self.orders - created) {
                self.arrive(created, now).await?;
                created += 1;
            }
            self.tick(now, n).await?;
            let settled = self.agents.iter().filter(|a| a.done).count();
            self.progress.set_position(settled as u64);
            self.progress
                .set_message(format!("{}", now.format("%a %d %b %H:%M")));
            // Every order, the ones splits made included, has an agent.
            if created == self.orders && settled == self.agents.len() {
                break;
            }
            self.clock.advance(TICK);
        }
        self.tally.simulated_days =
            (order_core::clock::Clock::now(self.clock.as_ref()) - start_time()).num_days();
        self.progress.finish_and_clear();
        Ok(())
    }

    /// A customer places an order.
    async fn arrive(&mut self, index: usize, now: DateTime<Utc>) -> anyhow::Result<()> {
        let seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64;
        let mut rng = SmallRng::seed_from_u64(seed);
        let customer = format!(
            "customer{}@example.com",
            rng.gen_range(0..(self.orders / 3).max(1))
        );
        let lines = rng.gen_range(1..=3);
        let mut items: Vec<(&str, i64)> = Vec::new();
        for _ in 0..lines {
            // A few lines ask for something scarce, which not everyone can have.
            let pick = if rng.gen_bool(0.07) {
                rng.gen_range(CATALOG.len() - 3..CATALOG.len())
            } else {
                rng.gen_range(0..CATALOG.len() - 3)
            };
            let sku = CATALOG[pick].0;
            if !items.iter().any(|(s, _)| *s == sku) {
                items.push((sku, rng.gen_range(1..=2)));
            }
        }
        let mut order = NewOrder::new(&customer, &items);
        order.shipping_address = Some(format!("{} Example Street, Berlin", index + 1));
        let created = self
            .engine
            .create_order(&order)
            .await
            .context("cannot create an order")?;
        let agent = Agent::new(created.id, customer, seed, &mut rng, now, self.crash_rate);
        self.agents.push(agent);
        Ok(())
    }

    /// The carrier's webhooks due at `now` into the inbox, then the inbox processed:
    /// parcels move, and their orders follow. It runs between the workers' steps.
    async fn carrier_news(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let deliveries = self.carrier.events_until(now);
        for event in &deliveries {
            self.tally.carrier.events_received += 1;
            let new = self
                .engine
                .receive_carrier_event(event)
                .await
                .context("cannot receive a carrier webhook")?;
            if !new {
                self.tally.carrier.duplicates_dropped += 1;
            }
        }
        if deliveries.is_empty() && self.tally.carrier.waiting == 0 {
            return Ok(());
        }
        let report = self
            .engine
            .process_carrier_inbox()
            .await
            .context("cannot process the carrier inbox")?;
        self.tally.add_inbox(&report);
        Ok(())
    }

    /// Runs every due step: those competing for stock or splitting their order alone in
    /// id order, the others on the workers at once; the carrier's and the processor's
    /// news first. A split's new order gets its agent here, after the step.
    async fn tick(&mut self, now: DateTime<Utc>, n: u64) -> anyhow::Result<()> {
        self.carrier_news(now).await?;
        self.payment_news(now, n).await?;
        let due: Vec<usize> = (0..self.agents.len())
            .filter(|&i| !self.agents[i].done && self.agents[i].due <= now)
            .collect();
        // The state is read once here; a step changes only its own order, so it is
        // still the order's state when the step runs.
        let mut alone = Vec::new();
        let mut together = Vec::new();
        for i in due {
            let agent = &mut self.agents[i];
            match self.engine.store().order(agent.id).await? {
                Some(order) if competes_for_stock(order.state) || agent.splits_now(order.state) => {
                    alone.push((i, order.state));
                }
                Some(order) => together.push((i, order.state)),
                None => {
                    self.tally
                        .unexpected
                        .push(format!("order {} is gone", agent.id));
                    agent.done = true;
                }
            }
        }
        for (i, state) in alone {
            let report = self.agents[i].step(&self.engine, now, state).await;
            self.take(report, now);
        }
        let mut groups: Vec<Vec<(usize, State, Agent)>> = vec![Vec::new(); self.workers];
        for (n, &(i, state)) in together.iter().enumerate() {
            groups[n % self.workers].push((i, state, self.agents[i].clone()));
        }
        let mut tasks = Vec::new();
        for mut group in groups {
            let engine = self.engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut reports = Vec::new();
                for (_, state, agent) in &mut group {
                    reports.push(agent.step(&engine, now, *state).await);
                }
                (group, reports)
            }));
        }
        for task in tasks {
            let (group, reports) = task.await.context("a worker panicked")?;
            for (i, _, agent) in group {
                self.agents[i] = agent;
            }
            for report in reports {
                self.take(report, now);
            }
        }
        Ok(())
    }

    /// What a step did, into the tally; a split's new order gets an agent.
    fn take(&mut self, mut report: StepReport, now: DateTime<Utc>) {
        if let Some(child) = report.child.take() {
            self.adopt(child, now);
        }
        self.tally.add(report);
    }
}
