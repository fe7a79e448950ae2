//! The audit log ([`AuditLog`]): every read, write and administrative change, appended to the
//! table `audit_log`. Rows are only ever inserted: the migration adds triggers that make the
//! database refuse `UPDATE` and `DELETE` on it, so Sluice cannot change the past even by mistake.
//!
//! A record is committed before the answer it describes leaves the server (the caller waits for
//! [`AuditLog::append_audit`]), so a process killed mid-answer still leaves the record of what it
//! started to answer.

use serde::Serialize;

use crate::StateError;

/// One audited event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Its place in the log (set by the database; 0 before it is appended).
    pub seq: i64,
    /// When (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// `read`, `write` or `admin`.
    pub kind: String,
    /// What: `sql`, `rows`, `chart`, `run_start`, `run_end`, `commit`, `token_create`, ...
    pub action: String,
    /// Who: the user, or the process (`sluice run`, `scheduler`) for writes it starts itself.
    pub actor: String,
    /// The user's role, when a user acted.
    pub role: Option<String>,
    /// `http`, `pg`, `flight` or `cli`.
    pub protocol: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// The tables read or written (`layer.table`, comma-separated).
    pub tables: Option<String>,
    /// The columns returned (comma-separated).
    pub columns: Option<String>,
    /// Rows returned or written.
    pub rows: Option<i64>,
    /// Hex SHA-256 of the query text.
    pub query_hash: Option<String>,
    /// The query text.
    pub query_text: Option<String>,
    /// Anything else (a run id, a Delta version, a token id), as JSON text.
    pub detail: Option<String>,
}

/// Keeping the audit log.
pub trait AuditLog: Send + Sync {
    /// Appends `record` (its `seq` is ignored) and returns its sequence number.
    fn append_audit(&self, record: &AuditRecord) -> Result<i64, StateError> {
        let seqs = self.append_audit_batch(std::slice::from_ref(record))?;
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Appends `records` in one transaction (all or none), in order, and returns their sequence
    /// numbers: the server batches the records of concurrent reads into one commit.
    fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<Vec<i64>, StateError>;

    /// Records after sequence number `after`, oldest first, at most `limit`.
    fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, StateError>;
}

/// The insert both backends run (`?n` placeholders; PostgreSQL's are `$n`).
pub(crate) const AUDIT_INSERT: &str = "INSERT INTO audit_log (at, kind, action, actor, role, \
     protocol, client, tables, columns, rows, query_hash, query_text, detail) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// The columns, in the order the backends read and write them.
pub const AUDIT_COLUMNS: &str = "seq, at, kind, action, actor, role, protocol, client, tables, \
                                 columns, rows, query_hash, query_text, detail";
