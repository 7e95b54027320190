//! `orderctl bench`: persisted transitions per second, against a baseline measured in
//! the same run on the same database.
//!
//! The workload is `confirm` by the system: one transaction that locks the order,
//! checks stock, reserves it with its ledger rows, writes the order, its audit row and
//! an outbox row. The baseline makes exactly the store calls the pipeline makes for it
//! (and so issues the same SQL statements), in a plain loop without the engine:
//! no machine lookup, authorization, guard dispatch, undo bookkeeping or attempt
//! records. The ratio engine/baseline is what the pipeline costs on top of its SQL.
//! Rounds alternate between the two, so that a noisy machine slows both alike, and
//! the medians are compared.
//!
//! On PostgreSQL the baseline is `pgbench`'s TPC-B-like transaction at the same number
//! of clients against the same server (its tables live beside ours for the run and are
//! dropped after it): the figure a PostgreSQL user knows their server by.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Utc;
use order_core::order::{Event, Notification, State};
use order_core::store::{NewMessage, NewTransition};
use order_core::{Actor, Command, Engine, NewOrder, OrderId, ProductId, Store};
use serde::Serialize;

use crate::output::outln;

/// The options of `orderctl bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Orders each client confirms per round.
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
    /// Rounds of each kind; the medians are compared.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Instead of transitions per second, time one bulk cancel of this many pending
    /// orders (batches of `--batch`) and print orders per second.
    #[arg(long)]
    pub bulk: Option<usize>,
    /// Orders per batch (per transaction) of `--bulk`.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Delete the database first (sqlite:// only). Without it, bench refuses a database
    /// that already holds data, since it adds products and orders of its own.
    #[arg(long)]
    pub reset: bool,
}

/// The figures of one run.
#[derive(Debug, Serialize)]
struct Report {
    db: String,
    clients: usize,
    orders_per_round: usize,
    rounds: usize,
    engine_tps: f64,
    /// `store calls` (the same calls without the engine) or `pgbench` (TPC-B-like).
    baseline: String,
    baseline_tps: f64,
    /// engine / baseline.
    ratio: f64,
    engine_rounds: Vec<f64>,
    baseline_rounds: Vec<f64>,
    verify_clean: bool,
}

/// Runs the benchmark and prints the ratio.
pub async fn run(ctx: &crate::Context, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 || args.orders == 0 || args.rounds == 0 {
        bail!("--clients, --orders and --rounds must be at least 1");
    }
    let store = crate::simulate::open_empty(ctx, args.reset).await?;
    catalog(store.as_ref()).await?;
    if let Some(orders) = args.bulk {
        return bulk(ctx, store, orders, args.batch).await;
    }
    let engine = Engine::new(store.clone());
    let pgbench = if ctx.db.starts_with("postgres") {
        Some(Pgbench::init(&ctx.db)?)
    } else {
        None
    };
    let (mut engine_rounds, mut baseline_rounds) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternate which goes first, so that neither always meets a warmer cache.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for through_engine in order {
            if let (false, Some(pgbench)) = (through_engine, &pgbench) {
                baseline_rounds.push(pgbench.run(args.clients, args.orders)?);
                continue;
            }
            let batches = orders(&engine, args, round).await?;
            let tps = time(&engine, batches, through_engine).await?;
            if through_engine {
                engine_rounds.push(tps);
            } else {
                baseline_rounds.push(tps);
            }
        }
    }
    if let Some(pgbench) = &pgbench {
        pgbench.drop_tables()?;
    }
    let findings = store.verify().await.context("verify failed to run")?;
    let (engine_tps, baseline_tps) = (median(&engine_rounds), median(&baseline_rounds));
    let report = Report {
        db: ctx.db.clone(),
        clients: args.clients,
        orders_per_round: args.clients * args.orders,
        rounds: args.rounds,
        engine_tps,
        baseline: if pgbench.is_some() {
            "pgbench"
        } else {
            "store calls"
        }
        .to_owned(),
        baseline_tps,
        ratio: if baseline_tps > 0.0 {
            engine_tps / baseline_tps
        } else {
            0.0
        },
        engine_rounds,
        baseline_rounds,
        verify_clean: findings.is_empty(),
    };
    print(&report, ctx.json)?;
    Ok(if report.verify_clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Four products with stock enough for every round.
async fn catalog(store: &dyn Store) -> anyhow::Result<()> {
    for (sku, price) in [
        ("BENCH-A", 1_000),
        ("BENCH-B", 2_500),
        ("BENCH-C", 400),
        ("BENCH-D", 9_900),
    ] {
        store.add_product(sku, sku, price, 100_000_000).await?;
    }
    Ok(())
}

/// Fresh pending orders of two lines each, one batch per client.
async fn orders(
    engine: &Engine,
    args: &BenchArgs,
    round: usize,
) -> anyhow::Result<Vec<Vec<OrderId>>> {
    let mut batches = Vec::new();
    for client in 0..args.clients {
        let mut batch = Vec::new();
        for n in 0..args.orders {
            let items: &[(&str, i64)] = if n % 2 == 0 {
                &[("BENCH-A", 2), ("BENCH-B", 1)]
            } else {
                &[("BENCH-C", 3), ("BENCH-D", 1)]
            };
            let customer = format!("bench{round}-{client}@example.com");
            batch.push(
                engine
                    .create_order(&NewOrder::new(customer, items))
                    .await?
                    .id,
            );
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// Confirms every order, the clients at once; returns transitions per second.
async fn time(
    engine: &Engine,
    batches: Vec<Vec<OrderId>>,
    through_engine: bool,
) -> anyhow::Result<f64> {
    let total: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for batch in batches {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for id in batch {
                if through_engine {
                    engine
                        .fire(id, Command::new(Event::Confirm, Actor::system()))
                        .await?;
                } else {
                    confirm_directly(engine.store(), id).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a client panicked")??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The store calls `fire` makes for `confirm` by the system, in the same order, with
/// the same data, and nothing else.
async fn confirm_directly(store: &Arc<dyn Store>, id: OrderId) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut tx = store.begin().await?;
    let mut order = tx.lock_order(id).await?.context("the order exists")?;
    let items = tx.items(id).await?;
    let seq = tx.last_seq(id).await? + 1;
    let mut wanted: Vec<(ProductId, i64)> = Vec::new();
    for item in &items {
        match wanted.iter_mut().find(|(p, _)| *p == item.product) {
            Some((_, q)) => *q += item.quantity,
            None => wanted.push((item.product, item.quantity)),
        }
    }
    wanted.sort();
    let ids: Vec<ProductId> = wanted.iter().map(|(p, _)| *p).collect();
    // The guard reads the stock; the action reserves it.
    tx.stock(&ids).await?;
    if tx.reserve_all(id, &wanted, now).await?.is_some() {
        bail!("out of stock");
    }
    let from = order.state;
    order.state = State::Confirmed;
    let metadata = serde_json::Value::Null;
    let row = NewTransition {
        order: id,
        seq,
        event: Event::Confirm,
        from,
        to: State::Confirmed,
        actor_kind: order_core::order::ActorKind::System,
        actor_id: None,
        reason: None,
        note: None,
        is_override: false,
        machine_hash: <order_core::order::Machine as statemachine::Machine>::SOURCE_HASH,
        idempotency_key: None,
        metadata: &metadata,
        at: now,
    };
    let kind = Notification::OrderConfirmed.as_str();
    let payload = serde_json::json!({
        "order": id, "number": order.number, "event": Event::Confirm,
        "from": from, "to": State::Confirmed, "seq": seq,
    });
    let dedupe_key = format!("order:{id}:{seq}:{kind}");
    let message = NewMessage {
        aggregate: id,
        kind,
        payload: &payload,
        dedupe_key: &dedupe_key,
        at: now,
    };
    if !tx.write_transition(&order, &row, &[message], now).await? {
        bail!("order {id} changed concurrently");
    }
    tx.commit().await?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    outln!(
        "confirm, {} client(s), {} orders per round, median of {} rounds each, on {}",
        report.clients,
        report.orders_per_round,
        report.rounds,
        report.db
    )?;
    outln!("engine:   {:>8.0} transitions/s", report.engine_tps)?;
    let what = if report.baseline == "pgbench" {
        "pgbench TPC-B-like transactions/s, same clients, same server"
    } else {
        "transitions/s: the same store calls, without the engine"
    };
    outln!("baseline: {:>8.0} {what}", report.baseline_tps)?;
    outln!("ratio engine/{} = {:.2}", report.baseline, report.ratio)?;
    outln!(
        "verify: {}",
        if report.verify_clean {
            "clean"
        } else {
            "findings; run `orderctl verify`"
        }
    )?;
    Ok(())
}

/// `pgbench` against the benchmark's own server.
struct Pgbench {
    program: std::path::PathBuf,
    url: String,
}

impl Pgbench {
    /// Finds `pgbench` and creates its tables (scale 1) in the database.
    fn init(url: &str) -> anyhow::Result<Pgbench> {
        let program = find_program("pgbench").context(
            "pgbench not found on PATH nor in /usr/lib/postgresql/*/bin; install PostgreSQL's client tools",
        )?;
        let pgbench = Pgbench {
            program,
            url: url.to_owned(),
        };
        pgbench.call(&["-i", "-q", "-s", "1"])?;
        Ok(pgbench)
    }

    /// One round: `transactions` TPC-B-like transactions per client; its tps.
    fn run(&self, clients: usize, transactions: usize) -> anyhow::Result<f64> {
        let (c, t) = (clients.to_string(), transactions.to_string());
        let out = self.call(&["-n", "-c", &c, "-j", &c, "-t", &t])?;
        out.lines()
            .find_map(|line| {
                let rest = line.trim().strip_prefix("tps = ")?;
                rest.split_whitespace().next()?.parse::<f64>().ok()
            })
            .with_context(|| format!("no tps in pgbench's output: {out}"))
    }

    fn drop_tables(&self) -> anyhow::Result<()> {
        self.call(&["-i", "-q", "-I", "d"]).map(drop)
    }

    fn call(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = std::process::Command::new(&self.program)
            .args(args)
            .arg(&self.url)
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!("pgbench {} failed: {}", args.join(" "), stderr.trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `program` on PATH, else in the newest `/usr/lib/postgresql/<version>/bin`.
fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let candidate = entry.path().join("bin").join(program);
                candidate.is_file().then_some((version, candidate))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, path)| path)
    })
}

/// `bench --bulk N`: N pending orders, then one bulk cancel of them all, timed.
async fn bulk(
    ctx: &crate::Context,
    store: Arc<dyn Store>,
    orders: usize,
    batch: usize,
) -> anyhow::Result<ExitCode> {
    use order_core::bulk::{BulkOptions, BulkTarget};
    use order_core::order::{ActorKind, Reason};
    let engine = Engine::new(store.clone());
    store.add_staff("bench-support", ActorKind::Support).await?;
    let created = Instant::now();
    for n in 0..orders {
        let customer = format!("bulk{}@example.com", n % 1000);
        engine
            .create_order(&NewOrder::new(customer, &[("BENCH-A", 1)]))
            .await?;
    }
    let creating = created.elapsed().as_secs_f64();
    let command =
        Command::new(Event::Cancel, Actor::support("bench-support")).reason(Reason::Other);
    let target = BulkTarget::Query(order_core::OrderQuery::new().in_states(&[State::Pending]));
    let started = Instant::now();
    let report = engine
        .bulk(
            &target,
            &command,
            BulkOptions {
                dry_run: false,
                batch_size: batch,
            },
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let fired = report.count("fired");
    let findings = store.verify().await.context("verify failed to run")?;
    let summary = serde_json::json!({
        "db": ctx.db,
        "orders": orders,
        "batch": batch,
        "fired": fired,
        "seconds": seconds,
        "orders_per_second": fired as f64 / seconds,
        "creating_seconds": creating,
        "verify_clean": findings.is_empty(),
    });
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        outln!(
            "bulk cancel of {fired} of {orders} orders in batches of {batch} on {}: {seconds:.1} s, {:.0} orders/s (creating them took {creating:.1} s)",
            ctx.db,
            fired as f64 / seconds
        )?;
        outln!(
            "verify: {}",
            if findings.is_empty() {
                "clean"
            } else {
                "findings; run `orderctl verify`"
            }
        )?;
    }
    Ok(if findings.is_empty() && fired == orders {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
