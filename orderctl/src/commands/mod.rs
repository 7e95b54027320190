//! One function per command. Each prints a table (or a line) for people, or JSON with
//! `--json`, and returns an error for exit code 1 (or 2 for a [`UsageError`]).
//! Arguments are checked before the database is opened.
//!
//! [`UsageError`]: crate::args::UsageError

mod catalog;
mod checks;
mod orders;
mod transitions;

use std::process::ExitCode;

use anyhow::Context as _;
use order_core::{Engine, Order, OrderId, Store};

use crate::Context;
use crate::cli::{Cmd, OrderCmd, ProductCmd, StaffCmd};

pub async fn run(ctx: &Context, command: Cmd) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Simulate(args) => return crate::simulate::run(ctx, &args).await,
        Cmd::Bench(args) => return crate::bench::run(ctx, &args).await,
        Cmd::Graph(args) => checks::graph(ctx, &args)?,
        Cmd::Init => catalog::init(ctx).await?,
        Cmd::Product(ProductCmd::Add(args)) => catalog::product_add(ctx, &args).await?,
        Cmd::Product(ProductCmd::List) => catalog::product_list(ctx).await?,
        Cmd::Staff(StaffCmd::Add(args)) => catalog::staff_add(ctx, &args).await?,
        Cmd::Order(OrderCmd::Create(args)) => orders::create(ctx, &args).await?,
        Cmd::List(args) => orders::list(ctx, &args).await?,
        Cmd::Stats => orders::stats(ctx).await?,
        Cmd::History(args) => orders::history(ctx, &args).await?,
        Cmd::Fire(args) => transitions::fire(ctx, &args).await?,
        Cmd::Available(args) => transitions::available(ctx, &args).await?,
        Cmd::Bulk(args) => transitions::bulk(ctx, &args).await?,
        Cmd::Verify => checks::verify(ctx).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine on the database of `--db`, its schema brought up to date: migrating is
/// idempotent and cheap, and it lets a new `orders.db` work without `init`. Commands
/// check their arguments before calling this, so that a usage error creates no file.
async fn open(ctx: &Context) -> anyhow::Result<Engine> {
    let store = crate::db::open(&ctx.db).await?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate `{}`", ctx.db))?;
    Ok(Engine::new(store))
}

/// The order, or the engine's own words for a missing one.
async fn order(store: &dyn Store, id: OrderId) -> anyhow::Result<Order> {
    store
        .order(id)
        .await?
        .ok_or_else(|| order_core::FireError::OrderNotFound(id).into())
}

/// Prints `value` as pretty JSON on stdout.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
