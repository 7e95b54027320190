//! `orderctl simulate`: a realistic shop on the embedded database and a simulated
//! clock. Customers order from a catalog with scarce stock; workers drive the orders
//! through their lives at once, with cancellations, declined and timed-out payments
//! (some of which support retries), orders split in two, parcels shipped in parts,
//! returns, staff overrides, and a bulk clean-up of abandoned carts at the end; then
//! `verify` must find nothing wrong.
//!
//! Parcels go through a simulated carrier: it makes their labels and lives each
//! parcel's journey (scans, failed attempts, returns to the sender, losses), telling
//! the shop by webhooks that come late, twice or out of order. Every tick the world
//! receives the deliveries due into the inbox and processes it, which moves the parcels
//! through `shipment.fsm` and their orders on (`follow_parcels`).
//!
//! Payments go through a simulated processor on the same clock, whose webhooks come
//! late, twice or out of order too, and which now and then lets an authorization lapse,
//! suffers a chargeback or reverses a refund; some payment steps run on a worker that
//! dies between the processor's answer and its commit, and reconciliation settles what
//! it left in doubt (`payments.rs`). At the end the money must add up.
//!
//! A run is deterministic for its seed: every choice draws from (seed, order, step),
//! crashes and the processor's own doings included, the payment simulator draws per
//! idempotency key (its webhooks per event), the carrier per label key and tracking
//! number, the inboxes and reconciliation run between the workers' steps, and the steps
//! that compete for stock or split an order run one at a time in id order, so the
//! concurrent ones cannot change each other's outcome and the orders splits make get
//! the same ids.

mod agent;
mod parcels;
mod payments;
mod report;
mod split;
mod ticks;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use order_core::bulk::{BulkOptions, BulkTarget};
use order_core::carrier::{CarrierSimulator, CarrierSimulatorConfig};
use order_core::clock::ManualClock;
use order_core::engine::inbox::InboxReport;
use order_core::order::{ActorKind, Event, Reason, State};
use order_core::payment::{Simulator, SimulatorConfig};
use order_core::{Actor, Command, Engine, OrderQuery, Store};

use agent::{Agent, StepReport};
use payments::{Money, PaymentsTally};

/// The options of `orderctl simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// How many orders customers place.
    #[arg(long, default_value_t = 300)]
    pub orders: usize,
    /// How many workers drive orders at once.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// The seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The share of payment authorizations the processor declines.
    #[arg(long, default_value_t = 0.1)]
    pub decline_rate: f64,
    /// The share of processor calls that time out (some after taking effect).
    #[arg(long, default_value_t = 0.02)]
    pub timeout_rate: f64,
    /// The share of payment steps (authorize, capture) whose worker dies between the
    /// processor's answer and its commit; reconciliation settles them.
    #[arg(long, default_value_t = 0.03)]
    pub crash_rate: f64,
    /// Start over: delete the orders, products and everything else in the database
    /// first. Without it, simulate refuses a database that already holds data.
    #[arg(long)]
    pub reset: bool,
}

/// The simulated catalog: (SKU, name, price in cents, stock). The last three are
/// scarce, so customers compete for them.
const CATALOG: &[(&str, &str, i64, i64)] = &[
    ("TEE-BLK", "Black tee", 1_900, 400),
    ("TEE-WHT", "White tee", 1_900, 400),
    ("HOODIE", "Hoodie", 4_900, 200),
    ("CAP", "Cap", 1_500, 300),
    ("MUG", "Mug", 1_200, 300),
    ("POSTER", "Poster", 900, 300),
    ("SNEAKER", "Sneakers", 8_900, 120),
    ("SCARF", "Scarf", 2_500, 150),
    ("LAMP-LTD", "Limited lamp", 12_900, 6),
    ("VINYL-SGN", "Signed vinyl", 3_900, 4),
    ("WATCH-1OF", "One-off watch", 45_000, 1),
];

/// The simulated time between two rounds of steps.
const TICK: TimeDelta = TimeDelta::minutes(30);

/// Monday 23 November 2026, 06:00 in Berlin: the shop opens two hours later.
fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T05:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Runs the simulation; exit 0 when `verify` is clean and the money adds up, 1 when
/// not.
pub async fn run(ctx: &crate::Context, args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    if args.orders == 0 || args.workers == 0 {
        bail!("--orders and --workers must be at least 1");
    }
    for (name, rate) in [
        ("--decline-rate", args.decline_rate),
        ("--timeout-rate", args.timeout_rate),
        ("--crash-rate", args.crash_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} must be between 0 and 1, got {rate}");
        }
    }
    let store = prepare(ctx, args.reset).await?;
    let started = Instant::now();
    let mut world = World::new(store.clone(), args);
    world.play().await?;
    let elapsed = started.elapsed();
    let findings = store.verify().await.context("verify failed to run")?;
    let summary =
        report::Summary::collect(store.as_ref(), &world.tally, elapsed, findings, args).await?;
    summary.print(ctx.json)?;
    Ok(if summary.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Opens the database for a run that adds a shop of its own (simulate, bench):
/// refusing one that holds data, or with `reset` deleting a SQLite file first.
pub async fn open_empty(ctx: &crate::Context, reset: bool) -> anyhow::Result<Arc<dyn Store>> {
    if reset {
        if let Some(path) = ctx.db.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{path}{suffix}");
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => bail!("cannot remove `{file}`: {e}"),
                }
            }
        } else {
            bail!("--reset only deletes sqlite:// databases; give an empty database instead");
        }
    }
    let store = crate::db::open(&ctx.db).await?;
    store.migrate().await.context("cannot create the schema")?;
    if !store.products().await?.is_empty() {
        bail!(
            "`{}` already holds a shop; add --reset to start over, or pass --db with a new database",
            ctx.db
        );
    }
    Ok(store)
}

/// An empty database with the simulated catalog and staff.
async fn prepare(ctx: &crate::Context, reset: bool) -> anyhow::Result<Arc<dyn Store>> {
    let store = open_empty(ctx, reset).await?;
    for (sku, name, price, stock) in CATALOG {
        store.add_product(sku, name, *price, *stock).await?;
    }
    store.add_staff("sam", ActorKind::Support).await?;
    store.add_staff("sue", ActorKind::Support).await?;
    store.add_staff("ada", ActorKind::Admin).await?;
    Ok(store)
}

/// What happened, summed over the run.
#[derive(Debug, Default)]
pub struct Tally {
    /// Order transitions, the ones the inbox made as orders followed their parcels
    /// included.
    pub fired: u64,
    pub refused: BTreeMap<String, u64>,
    pub unexpected: Vec<String>,
    pub bulk: BTreeMap<String, usize>,
    pub simulated_days: i64,
    pub carrier: CarrierTally,
    /// Parcels per state at the end (delivered, lost and returned_to_sender always
    /// present).
    pub parcels: BTreeMap<String, u64>,
    /// Orders left with nothing more to do, by why.
    pub stranded: BTreeMap<String, u64>,
    /// Orders split in two, each part living on as an order of its own.
    pub splits: u64,
    /// The processor's webhooks and doings, crashes and reconciliation.
    pub payments: PaymentsTally,
    /// The money invariants at the end.
    pub money: Money,
}

/// The carrier's webhooks and what the inbox made of them, summed over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CarrierTally {
    /// Webhook deliveries received, duplicates included.
    pub events_received: u64,
    /// Deliveries of an event the inbox already held, dropped on receipt.
    pub duplicates_dropped: u64,
    /// Events applied to their parcels.
    pub applied: u64,
    /// Events older than the parcel's last applied one, dropped.
    pub stale: u64,
    /// Events the parcel's machine refused.
    pub refused: u64,
    /// Events still waiting for an earlier one at the end.
    pub waiting: u64,
    /// Order transitions the inbox made (ship, deliver, return_to_sender).
    pub orders_followed: u64,
    /// Parcels support reported lost after their tracking went silent.
    pub reported_lost_by_support: u64,
}

impl Tally {
    fn add(&mut self, report: StepReport) {
        self.fired += report.fired;
        for kind in report.refused {
            *self.refused.entry(kind).or_insert(0) += 1;
        }
        self.unexpected.extend(report.unexpected);
        self.carrier.reported_lost_by_support += report.reported_lost;
        if let Some(why) = report.stranded {
            *self.stranded.entry(why).or_insert(0) += 1;
        }
        self.payments.retries += report.retried;
        if let Some(point) = report.crashed {
            *self
                .payments
                .crashes
                .entry(point.as_str().to_owned())
                .or_insert(0) += 1;
        }
    }

    fn add_inbox(&mut self, report: &InboxReport) {
        let count = |n: usize| n as u64;
        self.carrier.applied += count(report.applied);
        self.carrier.stale += count(report.stale);
        self.carrier.refused += count(report.refused);
        self.carrier.waiting = count(report.waiting);
        self.carrier.orders_followed += count(report.orders_followed);
        self.fired += count(report.orders_followed);
    }
}

struct World {
    engine: Engine,
    clock: Arc<ManualClock>,
    carrier: Arc<CarrierSimulator>,
    payments: Arc<Simulator>,
    agents: Vec<Agent>,
    workers: usize,
    orders: usize,
    seed: u64,
    crash_rate: f64,
    tally: Tally,
    progress: ProgressBar,
}

impl World {
    /// The shop's engine on `store`: a clock at the simulation's start, a payment
    /// simulator on that clock with the run's rates that draws per idempotency key and
    /// sends webhooks late, twice and out of order, and a carrier simulator seeded from
    /// the run's seed on the same clock, which makes the labels.
    fn new(store: Arc<dyn Store>, args: &SimulateArgs) -> World {
        let clock = Arc::new(ManualClock::new(start_time()));
        let payments = Arc::new(
            Simulator::new(SimulatorConfig {
                decline_rate: args.decline_rate,
                timeout_rate: args.timeout_rate / 2.0,
                timeout_after_success_rate: args.timeout_rate / 2.0,
                review_rate: 0.02,
                seed: args.seed,
                keyed: true,
                webhook_delay: payments::WEBHOOK_DELAY,
                duplicate_rate: payments::DUPLICATE_RATE,
                reorder_rate: payments::REORDER_RATE,
                reorder_hold: payments::REORDER_HOLD,
                ..SimulatorConfig::default()
            })
            .with_clock(clock.clone()),
        );
        let carrier = Arc::new(
            CarrierSimulator::new(CarrierSimulatorConfig::default().with_seed(args.seed))
                .with_clock(clock.clone()),
        );
        let engine = Engine::new(store)
            .with_clock(clock.clone())
            .with_payments(payments.clone())
            .with_carrier(carrier.clone());
        let progress = ProgressBar::new(args.orders as u64);
        progress.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} orders settled {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        World {
            engine,
            clock,
            carrier,
            payments,
            agents: Vec::new(),
            workers: args.workers,
            orders: args.orders,
            seed: args.seed,
            crash_rate: args.crash_rate,
            tally: Tally {
                payments: PaymentsTally::new(),
                ..Tally::default()
            },
            progress,
        }
    }

    /// The whole run: the orders' lives, the clean-up, the payments settled, then the
    /// counts and the money checks.
    async fn play(&mut self) -> anyhow::Result<()> {
        self.run().await?;
        self.clean_up().await?;
        self.settle_payments().await?;
        self.count_parcels().await?;
        self.check_money().await
    }

    /// Parcels per state, once the run is over.
    async fn count_parcels(&mut self) -> anyhow::Result<()> {
        let mut parcels: BTreeMap<String, u64> = ["delivered", "lost", "returned_to_sender"]
            .into_iter()
            .map(|state| (state.to_owned(), 0))
            .collect();
        for agent in &self.agents {
            for parcel in self.engine.store().shipments(agent.id).await? {
                *parcels.entry(parcel.state).or_insert(0) += 1;
            }
        }
        self.tally.parcels = parcels;
        Ok(())
    }

    /// Support cancels the carts left pending, in one bulk operation: first a dry run
    /// to see what would happen, then for real.
    async fn clean_up(&mut self) -> anyhow::Result<()> {
        let target = BulkTarget::Query(OrderQuery::new().in_states(&[State::Pending]));
        let command = Command::new(Event::Cancel, Actor::support("sue"))
            .reason(Reason::CustomerRequest)
            .note("abandoned cart clean-up")
            .key(format!("cleanup-{}", self.seed));
        let options = BulkOptions {
            dry_run: true,
            batch_size: 50,
        };
        let preview = self.engine.bulk(&target, &command, options).await?;
        let done = self
            .engine
            .bulk(
                &target,
                &command,
                BulkOptions {
                    dry_run: false,
                    ..options
                },
            )
            .await?;
        if preview.count("would_fire") != done.count("fired") {
            self.tally.unexpected.push(format!(
                "the bulk dry run predicted {} cancellations, the run made {}",
                preview.count("would_fire"),
                done.count("fired")
            ));
        }
        self.tally.fired += done.count("fired") as u64;
        self.tally.bulk = done.counts;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn simulate(
        dir: &std::path::Path,
        name: &str,
        seed: u64,
        workers: usize,
    ) -> report::Summary {
        let ctx = crate::Context {
            db: format!("sqlite://{}", dir.join(name).display()),
            processor_journal: None,
            json: false,
        };
        let args = SimulateArgs {
            orders: 80,
            workers,
            seed,
            decline_rate: 0.2,
            timeout_rate: 0.05,
            crash_rate: 0.08,
            reset: false,
        };
        let store = prepare(&ctx, false).await.expect("a fresh database");
        let mut world = World::new(store.clone(), &args);
        world
            .progress
            .set_draw_target(indicatif::ProgressDrawTarget::hidden());
        world.play().await.expect("the simulation runs");
        let findings = store.verify().await.expect("verify runs");
        report::Summary::collect(
            store.as_ref(),
            &world.tally,
            Duration::from_secs(1),
            findings,
            &args,
        )
        .await
        .expect("a summary")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_run_is_clean_and_the_same_for_the_same_seed_whatever_the_workers() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let one = simulate(dir.path(), "one.db", 7, 1).await;
        let four = simulate(dir.path(), "four.db", 7, 4).await;
        for summary in [&one, &four] {
            assert!(
                summary.clean(),
                "{:#?} {:#?} {:#?}",
                summary.unexpected,
                summary.findings,
                summary.money.problems
            );
            assert!(summary.transitions > 200, "{summary:#?}");
            // Every order settled somewhere final or waiting on nobody, the ones split
            // off included.
            assert_eq!(
                summary.states.values().sum::<i64>(),
                80 + i64::try_from(summary.splits).unwrap_or(0)
            );
        }
        assert_eq!(one.states, four.states);
        assert_eq!(one.refusals, four.refusals);
        assert_eq!(one.transitions, four.transitions);
        assert_eq!(one.payment, four.payment);
        assert_eq!(one.carrier, four.carrier);
        assert_eq!(one.parcels, four.parcels);
        assert_eq!(one.payments, four.payments);
        assert_eq!(one.money, four.money);
        assert_eq!(one.stranded, four.stranded);
        assert_eq!(one.splits, four.splits);
        let crashes: u64 = one.payments.crashes.values().sum();
        assert!(
            one.payments.webhooks_received > 0 && crashes > 0,
            "{:#?}",
            one.payments
        );
        assert_eq!(
            one.money.processor_captured_cents,
            one.money.books_captured_cents
        );
        assert!(
            one.carrier.applied > 0 && one.parcels["delivered"] > 0,
            "{one:#?}"
        );
        let other = simulate(dir.path(), "other.db", 8, 4).await;
        assert_ne!(
            (&one.states, &one.refusals),
            (&other.states, &other.refusals)
        );
    }
}
