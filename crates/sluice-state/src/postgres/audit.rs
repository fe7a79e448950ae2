//! [`AuditLog`] on PostgreSQL (table `audit_log`).

use tokio_postgres::Row;

use super::PostgresStore;
use crate::StateError;
use crate::audit::{AUDIT_COLUMNS, AuditLog, AuditRecord};

fn record(row: &Row) -> AuditRecord {
    AuditRecord {
        seq: row.get(0),
        at: row.get(1),
        kind: row.get(2),
        action: row.get(3),
        actor: row.get(4),
        role: row.get(5),
        protocol: row.get(6),
        client: row.get(7),
        tables: row.get(8),
        columns: row.get(9),
        rows: row.get(10),
        query_hash: row.get(11),
        query_text: row.get(12),
        detail: row.get(13),
    }
}

impl AuditLog for PostgresStore {
    fn append_audit(&self, r: &AuditRecord) -> Result<i64, StateError> {
        let r = r.clone();
        self.exec(move |c, rt| {
            let row = rt.block_on(c.query_one(
                "INSERT INTO audit_log (at, kind, action, actor, role, protocol, client, tables, \
                 columns, rows, query_hash, query_text, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq",
                &[
                    &r.at,
                    &r.kind,
                    &r.action,
                    &r.actor,
                    &r.role,
                    &r.protocol,
                    &r.client,
                    &r.tables,
                    &r.columns,
                    &r.rows,
                    &r.query_hash,
                    &r.query_text,
                    &r.detail,
                ],
            ))?;
            Ok(row.get(0))
        })
    }

    fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[&after, &limit],
            ))?;
            Ok(rows.iter().map(record).collect())
        })
    }
}
