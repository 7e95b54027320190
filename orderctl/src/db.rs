//! Opening the database a `--db URL` names.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use order_core::{PostgresStore, SqliteStore, Store};

/// The store of `url`: `sqlite://PATH` (created on first use) or `postgres://...`.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url)
            .await
            .with_context(|| format!("cannot open `{url}`"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::connect(url)
            .await
            .with_context(|| format!("cannot open `{}`", redact(url)))?;
        return Ok(Arc::new(store));
    }
    bail!("unsupported database URL `{url}`; expected sqlite://PATH or postgres://...")
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("postgres://shop:secret@db/orders"),
            "postgres://shop:***@db/orders"
        );
        assert_eq!(
            super::redact("postgres://shop@db/orders"),
            "postgres://shop@db/orders"
        );
        assert_eq!(super::redact("sqlite://orders.db"), "sqlite://orders.db");
    }
}
