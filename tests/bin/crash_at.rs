//! A process for the crash tests to lose: it opens an order database and a journaled
//! payment processor, runs one payment step, and aborts at the named crash point, the
//! way a machine that loses power would stop: no unwinding, no rollback sent, no undo.
//!
//! Usage: `crash-at DB_URL JOURNAL ORDER_ID authorize|pay authorized|captured`

use std::process::ExitCode;
use std::sync::Arc;

use order_core::engine::CrashPoint;
use order_core::order::Event;
use order_core::payment::{JournaledSimulator, SimulatorConfig};
use order_core::{Actor, Command, Engine, OrderId, PostgresStore, SqliteStore, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, journal, order, step, point] = args.as_slice() else {
        eprintln!("usage: crash-at DB_URL JOURNAL ORDER_ID authorize|pay authorized|captured");
        return ExitCode::from(2);
    };
    match run(url, journal, order, step, point).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crash-at: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(url: &str, journal: &str, order: &str, step: &str, point: &str) -> Result<(), String> {
    let id = OrderId(
        order
            .parse()
            .map_err(|_| format!("not an order id: {order}"))?,
    );
    let point = CrashPoint::ALL
        .into_iter()
        .find(|p| p.as_str() == point)
        .ok_or_else(|| format!("not a crash point: {point}"))?;
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url).await.map_err(|e| e.to_string())?)
    } else {
        Arc::new(
            PostgresStore::connect(url)
                .await
                .map_err(|e| e.to_string())?,
        )
    };
    let processor = JournaledSimulator::open(journal.as_ref(), SimulatorConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let engine = Engine::new(store)
        .with_payments(Arc::new(processor))
        .with_crash_points(Arc::new(move |reached| {
            if reached == point {
                std::process::abort();
            }
        }));
    match step {
        "authorize" => engine
            .authorize_payment(id)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        "pay" => engine
            .fire(id, Command::new(Event::Pay, Actor::system()))
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        other => Err(format!("not a step: {other}")),
    }
}
