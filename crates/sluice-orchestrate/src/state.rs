//! The state database: run history, node results, check results, watermarks, and through the
//! other modules of this crate (`control`, `abandon`, `schedule::store`, `partition::store`) run
//! control, run processes, schedules and partitions.
//!
//! SQLite at `.sluice/state.db` by default. The lake's own commits are the source of truth for what
//! data landed (idempotency tokens, high-water marks); this database records what happened and when,
//! for `sluice runs`, `sluice status`, the API and the UI.
//!
//! Every table, its migrations and every query belong to `sluice-state`; [`StateStore`] holds one
//! [`sluice_state::State`] (any backend) and adds what is this crate's to decide: the identity of
//! this process, the clock, and whether another process is gone.

use std::path::Path;
use std::sync::Arc;

use sluice_state::{RunProcess, SqliteStore, State, StateLocation};

use crate::process::{ProcessId, start_ticks};

/// Errors of the state database (defined by `sluice-state`, which owns the schema).
pub use sluice_state::StateError;
/// The run-history records (defined by `sluice-state`, whose backends store them).
pub use sluice_state::{CheckRecord, NodeRecord, RunRecord};

/// This process as the audit log names it.
fn process_name() -> String {
    ProcessId::current().map_or_else(|| "sluice".to_string(), |p| p.to_string())
}

/// The state database, on whichever backend `state:` names: every caller in the workspace reads
/// and writes state through this one object.
#[derive(Debug, Clone)]
pub struct StateStore {
    db: Arc<dyn State>,
}

impl StateStore {
    /// Opens (creating if needed) the database at `location` (a SQLite file or a PostgreSQL URL),
    /// migrated to the current schema ([`sluice_state::connect`]: shared safely between processes;
    /// refused when a newer sluice migrated it further).
    pub fn open(location: &StateLocation) -> Result<StateStore, StateError> {
        Ok(StateStore {
            db: sluice_state::connect(location)?,
        })
    }

    /// [`StateStore::open`] for a SQLite file.
    pub fn open_sqlite(path: &Path) -> Result<StateStore, StateError> {
        StateStore::open(&StateLocation::sqlite(path))
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<StateStore, StateError> {
        Ok(StateStore::from_backend(
            Arc::new(SqliteStore::in_memory()?),
        ))
    }

    /// The store over an already opened backend.
    pub fn from_backend(db: Arc<dyn State>) -> StateStore {
        StateStore { db }
    }

    /// The backend (for the crates that keep their own tables' logic, like the monitor's
    /// incidents, and for tests that record what this process would not, e.g. another process).
    pub fn backend(&self) -> &Arc<dyn State> {
        &self.db
    }

    /// Records the start of a run, executed by this process (whose identity and heartbeat tell later
    /// whether it is still alive: [`crate::abandon`]).
    pub fn start_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        started_at: &str,
    ) -> Result<(), StateError> {
        let me = ProcessId::current();
        let process = RunProcess {
            start_ticks: me
                .as_ref()
                .and_then(|p| start_ticks(p.pid))
                .map(|t| t as i64),
            process: me.map(|p| p.to_string()).unwrap_or_default(),
            heartbeat_ms: now_ms(),
        };
        let actor = process.process.clone();
        self.db
            .start_run(run_id, command, selection, started_at, &process)?;
        self.audit_write(
            "run_start",
            actor,
            None,
            None,
            serde_json::json!({"run_id": run_id, "command": command, "selection": selection}),
        );
        Ok(())
    }

    /// Records the end of a run with its counts.
    pub fn finish_run(&self, r: &RunRecord) -> Result<(), StateError> {
        self.db.finish_run(r)?;
        self.audit_write(
            "run_end",
            process_name(),
            None,
            None,
            serde_json::json!({"run_id": r.run_id, "status": r.status}),
        );
        Ok(())
    }

    /// Records one node result (and, when it committed a table version, the commit in the audit
    /// log).
    pub fn record_node(&self, n: &NodeRecord) -> Result<(), StateError> {
        self.db.record_node(n)?;
        if let Some(version) = n.version {
            self.audit_write(
                "commit",
                process_name(),
                Some(n.node.clone()),
                n.rows_out,
                serde_json::json!({"run_id": n.run_id, "version": version, "status": n.status}),
            );
        }
        Ok(())
    }

    /// Appends a write to the audit log ([`sluice_state::audit`]). The write itself is already
    /// committed: a failure here is logged loudly rather than failing the run.
    fn audit_write(
        &self,
        action: &str,
        actor: String,
        tables: Option<String>,
        rows: Option<i64>,
        detail: serde_json::Value,
    ) {
        let record = sluice_state::AuditRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind: "write".into(),
            action: action.into(),
            actor,
            protocol: Some("process".into()),
            tables,
            rows,
            detail: Some(detail.to_string()),
            ..sluice_state::AuditRecord::default()
        };
        if let Err(e) = self.db.append_audit(&record) {
            tracing::error!(error = %e, action, "cannot append a write to the audit log");
        }
    }

    /// Records one check result.
    pub fn record_check(&self, r: &CheckRecord) -> Result<(), StateError> {
        self.db.record_check(r)
    }

    /// Records a node's high-water mark (a mirror of what its last commit recorded).
    pub fn set_watermark(
        &self,
        node: &str,
        value: &serde_json::Value,
        run_id: &str,
        at: &str,
    ) -> Result<(), StateError> {
        self.db.set_watermark(node, value, run_id, at)
    }

    /// A node's recorded high-water mark.
    pub fn watermark(&self, node: &str) -> Result<Option<serde_json::Value>, StateError> {
        self.db.watermark(node)
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.db.runs(limit)
    }

    /// One run.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError> {
        self.db.run(run_id)
    }

    /// The node results of a run, in start order.
    pub fn nodes_of_run(&self, run_id: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.db.nodes_of_run(run_id)
    }

    /// The latest result of every node.
    pub fn latest_nodes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.db.latest_nodes()
    }

    /// The latest successful result of every node.
    pub fn latest_successes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.db.latest_successes()
    }

    /// History of one node, newest first.
    pub fn node_history(&self, node: &str, limit: usize) -> Result<Vec<NodeRecord>, StateError> {
        self.db.node_history(node, limit)
    }

    /// Check results of a run.
    pub fn checks_of_run(&self, run_id: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.db.checks_of_run(run_id)
    }

    /// The latest result of every check.
    pub fn latest_checks(&self) -> Result<Vec<CheckRecord>, StateError> {
        self.db.latest_checks()
    }
}

/// Milliseconds since the Unix epoch (lease expiry and heartbeat times).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(run: &str, name: &str, status: &str, at: &str) -> NodeRecord {
        NodeRecord {
            run_id: run.into(),
            node: name.into(),
            kind: "model".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: Some(3),
            rows_quarantined: None,
            started_at: at.into(),
            finished_at: at.into(),
            duration_ms: 5,
            error: None,
            version: Some(1),
        }
    }

    #[test]
    fn records_and_reads_back() {
        let s = StateStore::in_memory().unwrap();
        s.start_run("r1", "run", "", "2026-01-01T00:00:00Z")
            .unwrap();
        s.record_node(&node("r1", "a", "success", "2026-01-01T00:00:01Z"))
            .unwrap();
        s.start_run("r2", "run", "a", "2026-01-02T00:00:00Z")
            .unwrap();
        s.record_node(&node("r2", "a", "failed", "2026-01-02T00:00:01Z"))
            .unwrap();
        assert_eq!(s.runs(10).unwrap()[0].run_id, "r2");
        assert_eq!(s.latest_nodes().unwrap()[0].status, "failed");
        assert_eq!(s.latest_successes().unwrap()[0].run_id, "r1");
        s.set_watermark("src.t", &serde_json::json!("2026-01-05"), "r1", "now")
            .unwrap();
        s.set_watermark("src.t", &serde_json::json!("2026-01-06"), "r2", "now")
            .unwrap();
        assert_eq!(
            s.watermark("src.t").unwrap(),
            Some(serde_json::json!("2026-01-06"))
        );
    }
}
