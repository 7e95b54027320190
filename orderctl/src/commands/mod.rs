//! One function per command. Each prints a table (or a line) for people, or JSON with
//! `--json`, and returns an error for exit code 1 (or 2 for a [`UsageError`]).
//! Arguments are checked before the database is opened.
//!
//! [`UsageError`]: crate::args::UsageError

mod catalog;
mod checks;
mod inbox;
mod operations;
mod orders;
mod payments;
mod shipments;
mod show;
mod transitions;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use order_core::clock::ManualClock;
use order_core::engine::CrashPoint;
use order_core::{Engine, Order, OrderId, Store};

use crate::Context;
use crate::args::UsageError;
use crate::cli::{Cmd, InboxCmd, OrderCmd, PaymentCmd, ProductCmd, ShipmentCmd, StaffCmd};
use crate::output::outln;
use crate::processor::JournalPath;

/// The environment variable that stops the engine's clock at a given time (RFC 3339),
/// for tests and rehearsals of time-bound rules (the `business_hours` window, the
/// return window). Every timestamp the command writes is that time.
pub const NOW_VAR: &str = "ORDERCTL_NOW";

/// The environment variable that aborts the process at one of the engine's
/// [`CrashPoint`]s (`authorized` or `captured`), for crash tests of real processes. Not
/// in `--help`, like [`NOW_VAR`].
pub const CRASH_VAR: &str = "ORDERCTL_CRASH_AT";

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
        Cmd::Order(OrderCmd::Show(args)) => show::show(ctx, &args).await?,
        Cmd::Order(OrderCmd::Authorize(args)) => operations::authorize(ctx, &args).await?,
        Cmd::Order(OrderCmd::Modify(args)) => operations::modify(ctx, &args).await?,
        Cmd::Order(OrderCmd::Address(args)) => operations::address(ctx, &args).await?,
        Cmd::Order(OrderCmd::Note(args)) => operations::note(ctx, &args).await?,
        Cmd::Order(OrderCmd::Split(args)) => operations::split(ctx, &args).await?,
        Cmd::Order(OrderCmd::ReturnReceived(args)) => {
            operations::return_received(ctx, &args).await?;
        }
        Cmd::Shipment(ShipmentCmd::Add(args)) => shipments::add(ctx, &args).await?,
        Cmd::Shipment(ShipmentCmd::Update(args)) => shipments::update(ctx, &args).await?,
        Cmd::Shipment(ShipmentCmd::History(args)) => shipments::history(ctx, &args).await?,
        Cmd::Payment(PaymentCmd::Update(args)) => payments::update(ctx, &args).await?,
        Cmd::Payment(PaymentCmd::History(args)) => payments::history(ctx, &args).await?,
        Cmd::Inbox(InboxCmd::Receive(args)) => inbox::receive(ctx, &args).await?,
        Cmd::Inbox(InboxCmd::Process) => inbox::process(ctx).await?,
        Cmd::Inbox(InboxCmd::List(args)) => inbox::list(ctx, &args).await?,
        Cmd::List(args) => orders::list(ctx, &args).await?,
        Cmd::Stats => orders::stats(ctx).await?,
        Cmd::History(args) => orders::history(ctx, &args).await?,
        Cmd::Fire(args) => transitions::fire(ctx, &args).await?,
        Cmd::Available(args) => transitions::available(ctx, &args).await?,
        Cmd::Bulk(args) => transitions::bulk(ctx, &args).await?,
        Cmd::Verify => checks::verify(ctx).await?,
        Cmd::Reconcile => checks::reconcile(ctx).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine on the database of `--db`, its schema brought up to date: migrating is
/// idempotent and cheap, and it lets a new `orders.db` work without `init`. Commands
/// check their arguments before calling this, so that a usage error creates no file.
///
/// The engine pays through the simulated processor of the journal `--processor-journal`
/// names or the database implies (see [`crate::processor`] for why not the in-memory
/// simulator), reads the system clock, or the stopped one of [`NOW_VAR`], and aborts
/// the process at the crash point of [`CRASH_VAR`], if set. The environment and the
/// journal's path are checked before anything is opened.
async fn open(ctx: &Context) -> anyhow::Result<Engine> {
    let now = stopped_clock(std::env::var(NOW_VAR).ok().as_deref())?;
    let crash_at = crash_point(std::env::var(CRASH_VAR).ok().as_deref())?;
    let journal = JournalPath::new(ctx.processor_journal.as_deref(), &ctx.db)?;
    let store = crate::db::open(&ctx.db).await?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate `{}`", ctx.db))?;
    let processor = journal.open().await?;
    let mut engine = Engine::new(store).with_payments(processor);
    if let Some(now) = now {
        engine = engine.with_clock(Arc::new(ManualClock::new(now)));
    }
    if let Some(point) = crash_at {
        engine = engine.with_crash_points(Arc::new(move |reached| {
            if reached == point {
                std::process::abort();
            }
        }));
    }
    Ok(engine)
}

/// The crash point [`CRASH_VAR`] names, if it is set (and not empty).
fn crash_point(value: Option<&str>) -> Result<Option<CrashPoint>, UsageError> {
    let Some(text) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    CrashPoint::ALL
        .into_iter()
        .find(|point| point.as_str() == text)
        .map(Some)
        .ok_or_else(|| {
            let known: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.as_str()).collect();
            UsageError(format!(
                "{CRASH_VAR}: `{text}` is not a crash point; expected one of: {}",
                known.join(", ")
            ))
        })
}

/// The time [`NOW_VAR`] sets, if it is set (and not empty).
fn stopped_clock(value: Option<&str>) -> Result<Option<DateTime<Utc>>, UsageError> {
    let Some(text) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|_| {
            UsageError(format!(
                "{NOW_VAR}: `{text}` is not an RFC 3339 time, e.g. 2026-03-04T10:00:00Z"
            ))
        })
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
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_stops_only_at_a_valid_time() {
        use super::stopped_clock;
        assert_eq!(stopped_clock(None), Ok(None));
        assert_eq!(stopped_clock(Some(" ")), Ok(None));
        let at =
            stopped_clock(Some("2026-03-04T11:00:00+01:00")).map(|t| t.map(|t| t.to_rfc3339()));
        assert_eq!(at, Ok(Some("2026-03-04T10:00:00+00:00".to_owned())));
        let bad = stopped_clock(Some("tomorrow")).expect_err("refused").0;
        assert!(
            bad.starts_with("ORDERCTL_NOW: `tomorrow` is not an RFC 3339 time"),
            "{bad}"
        );
    }

    #[test]
    fn a_crash_point_must_be_the_engines() {
        use super::crash_point;
        use order_core::engine::CrashPoint;
        assert_eq!(crash_point(None), Ok(None));
        assert_eq!(crash_point(Some("")), Ok(None));
        assert_eq!(
            crash_point(Some("authorized")),
            Ok(Some(CrashPoint::Authorized))
        );
        assert_eq!(
            crash_point(Some(" captured ")),
            Ok(Some(CrashPoint::Captured))
        );
        let bad = crash_point(Some("paid")).expect_err("refused").0;
        assert_eq!(
            bad,
            "ORDERCTL_CRASH_AT: `paid` is not a crash point; expected one of: authorized, captured"
        );
    }
}
