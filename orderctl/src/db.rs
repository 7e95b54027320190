//! Opening the database a `--db URL` names.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use order_core::{SqliteStore, Store};

/// The store of `url`: `sqlite://PATH` (created on first use) or `postgres://...`.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url)
            .await
            .with_context(|| format!("cannot open `{url}`"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!("PostgreSQL is not supported yet; use a sqlite:// URL");
    }
    bail!("unsupported database URL `{url}`; expected sqlite://PATH or postgres://...")
}
