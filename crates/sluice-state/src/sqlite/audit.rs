//! [`AuditLog`] on SQLite (table `audit_log`).

use rusqlite::{Row, params};

use super::SqliteStore;
use crate::StateError;
use crate::audit::{AUDIT_COLUMNS, AuditLog, AuditRecord};

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
    fn append_audit(&self, r: &AuditRecord) -> Result<i64, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit_log (at, kind, action, actor, role, protocol, client, tables, \
                 columns, rows, query_hash, query_text, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
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
                ],
            )?;
            Ok(c.last_insert_rowid())
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
        let all = db.audit_records(0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].actor, "ana");
        assert_eq!(all[0].rows, Some(3));
        assert_eq!(db.audit_records(first, 10).unwrap().len(), 1);
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let e = db.with(|c| c.execute(sql, [])).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert_eq!(db.audit_records(0, 10).unwrap().len(), 2);
    }
}
