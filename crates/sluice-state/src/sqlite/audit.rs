//! [`AuditLog`] on SQLite (table `audit_log`).

use rusqlite::{Row, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use crate::StateError;
use crate::audit::{AUDIT_COLUMNS, AUDIT_INSERT, AuditLog, AuditRecord};

fn record(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get(0)?,
        at: row.get(1)?,
        kind: row.get(2)?,
        action: row.get(3)?,
        actor: row.get(4)?,
        role: row.get(5)?,
        protocol: row.get(6)?,
        client: row.get(7)?,
        tables: row.get(8)?,
        columns: row.get(9)?,
        rows: row.get(10)?,
        query_hash: row.get(11)?,
        query_text: row.get(12)?,
        detail: row.get(13)?,
    })
}

impl AuditLog for SqliteStore {
    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<Vec<i64>, StateError> {
        self.with(|c| {
            // IMMEDIATE: the write lock is taken at once, so a busy database waits at the start
            // (busy_timeout) rather than failing midway.
            let tx = Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let mut seqs = Vec::with_capacity(records.len());
            {
                let mut insert = tx.prepare_cached(AUDIT_INSERT)?;
                for r in records {
                    insert.execute(params![
                        r.at,
                        r.kind,
                        r.action,
                        r.actor,
                        r.role,
                        r.protocol,
                        r.client,
                        r.tables,
                        r.columns,
                        r.rows,
                        r.query_hash,
                        r.query_text,
                        r.detail
                    ])?;
                    seqs.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            Ok(seqs)
        })
    }

    fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit], record)?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_append_in_order_and_cannot_be_changed() {
        let db = SqliteStore::in_memory().unwrap();
        let first = db
            .append_audit(&AuditRecord {
                at: "2026-01-01T00:00:00.000Z".into(),
                kind: "read".into(),
                action: "sql".into(),
                actor: "ana".into(),
                rows: Some(3),
                ..AuditRecord::default()
            })
            .unwrap();
        let second = db
            .append_audit(&AuditRecord {
                at: "2026-01-01T00:00:01.000Z".into(),
                kind: "admin".into(),
                action: "token_create".into(),
                actor: "root".into(),
                ..AuditRecord::default()
            })
            .unwrap();
        assert!(second > first);
        let batch = db
            .append_audit_batch(&[
                AuditRecord {
                    at: "2026-01-01T00:00:02.000Z".into(),
                    kind: "read".into(),
                    action: "read_end".into(),
                    actor: "ana".into(),
                    ..AuditRecord::default()
                },
                AuditRecord {
                    at: "2026-01-01T00:00:02.000Z".into(),
                    kind: "read".into(),
                    action: "sql".into(),
                    actor: "bo".into(),
                    ..AuditRecord::default()
                },
            ])
            .unwrap();
        assert_eq!(batch, vec![second + 1, second + 2]);
        let all = db.audit_records(0, 10).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].actor, "bo");
        assert_eq!(all[0].actor, "ana");
        assert_eq!(all[0].rows, Some(3));
        assert_eq!(db.audit_records(first, 10).unwrap().len(), 3);
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let e = db.with(|c| c.execute(sql, [])).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert_eq!(db.audit_records(0, 10).unwrap().len(), 4);
    }
}
