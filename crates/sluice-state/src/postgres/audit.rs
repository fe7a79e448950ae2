//! [`AuditLog`] on PostgreSQL (table `audit_log`).

use tokio_postgres::Row;

use super::PostgresStore;
use crate::StateError;
use crate::audit::{AUDIT_COLUMNS, AUDIT_INSERT, AuditLog, AuditRecord};

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
    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<Vec<i64>, StateError> {
        let records = records.to_vec();
        let insert = AUDIT_INSERT.replace('?', "$") + " RETURNING seq";
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                let stmt = tx.prepare(&insert).await?;
                let mut seqs = Vec::with_capacity(records.len());
                for r in &records {
                    let row = tx
                        .query_one(
                            &stmt,
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
                        )
                        .await?;
                    seqs.push(row.get(0));
                }
                tx.commit().await?;
                Ok(seqs)
            })
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
