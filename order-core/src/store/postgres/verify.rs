//! `Store::verify` on PostgreSQL: the shared checks of `store::checks`, one query per
//! invariant, all over one read snapshot (the caller's REPEATABLE READ transaction).

use sqlx::Postgres;
use sqlx::postgres::PgConnection;

use crate::store::Result;
use crate::store::checks;
use crate::store::order_query::Dialect;
use crate::verify::Finding;

pub(super) async fn verify(conn: &mut PgConnection) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for check in checks::checks(Postgres::BYTEWISE) {
        let mut query = sqlx::query(&check.sql);
        if let Some(value) = check.bind {
            query = query.bind(value);
        }
        for row in query.fetch_all(&mut *conn).await? {
            findings.push(check.finding(&row)?);
        }
    }
    Ok(findings)
}
