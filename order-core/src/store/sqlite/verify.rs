//! `Store::verify` on SQLite: the shared checks of `store::checks`, one query per
//! invariant, all over one read snapshot.

use sqlx::{Sqlite, SqlitePool};

use crate::store::Result;
use crate::store::checks;
use crate::store::order_query::Dialect;
use crate::verify::Finding;

pub(super) async fn verify(pool: &SqlitePool) -> Result<Vec<Finding>> {
    // A deferred transaction: every query below reads the same snapshot.
    let mut tx = pool.begin().await?;
    let mut findings = Vec::new();
    for check in checks::checks(Sqlite::BYTEWISE) {
        let mut query = sqlx::query(&check.sql);
        if let Some(value) = check.bind {
            query = query.bind(value);
        }
        for row in query.fetch_all(&mut *tx).await? {
            findings.push(check.finding(&row)?);
        }
    }
    tx.rollback().await?;
    Ok(findings)
}
