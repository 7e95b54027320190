//! `orderctl bench`: persisted transitions per second against a same-run baseline
//! (being written).

/// The options of `orderctl bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Orders driven through their lifecycle per client.
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
}

/// Runs the benchmark and prints the ratio.
pub async fn run(ctx: &crate::Context, args: &BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("bench is being written")
}
