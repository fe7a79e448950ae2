//! The state database: run history, node results, check results, watermarks.
//!
//! SQLite at `.sluice/state.db` by default. The lake's own commits are the source of truth for what
//! data landed (idempotency tokens, high-water marks); this database records what happened and when,
//! for `sluice runs`, `sluice status`, the API and the UI.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Errors of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The folder for the database could not be created.
    #[error("state database {path}: {source}")]
    Io {
        /// The database file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, command TEXT NOT NULL, selection TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, nodes_ok INTEGER DEFAULT 0, nodes_failed INTEGER DEFAULT 0,
    nodes_skipped INTEGER DEFAULT 0, checks_passed INTEGER DEFAULT 0, checks_warned INTEGER DEFAULT 0,
    checks_failed INTEGER DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS node_runs (
    run_id TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    rows_in INTEGER, rows_out INTEGER, rows_quarantined INTEGER, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL, error TEXT, version INTEGER, PRIMARY KEY (run_id, node));
CREATE INDEX IF NOT EXISTS node_runs_by_node ON node_runs (node, finished_at);
CREATE TABLE IF NOT EXISTS check_results (
    run_id TEXT NOT NULL, check_name TEXT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL, column_name TEXT,
    severity TEXT NOT NULL, status TEXT NOT NULL, failing_rows INTEGER NOT NULL, sample TEXT, message TEXT,
    checked_at TEXT NOT NULL, PRIMARY KEY (run_id, check_name));
CREATE INDEX IF NOT EXISTS check_results_by_model ON check_results (model, checked_at);
CREATE TABLE IF NOT EXISTS watermarks (
    node TEXT PRIMARY KEY, value TEXT NOT NULL, run_id TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedule_ticks (node TEXT PRIMARY KEY, last_tick TEXT NOT NULL);
";

/// A run, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// The command that started it (`run`, `test`, `demo`, `api`).
    pub command: String,
    /// The selection (empty: everything).
    pub selection: String,
    /// `running`, `success`, `partial` (some nodes failed), `failed`, `cancelled`, or `abandoned`
    /// (its process died: [`crate::abandon`]).
    pub status: String,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// End time.
    pub finished_at: Option<String>,
    /// Nodes that succeeded.
    pub nodes_ok: i64,
    /// Nodes that failed.
    pub nodes_failed: i64,
    /// Nodes skipped because an upstream failed.
    pub nodes_skipped: i64,
    /// Checks that passed.
    pub checks_passed: i64,
    /// Checks that warned.
    pub checks_warned: i64,
    /// Checks that failed.
    pub checks_failed: i64,
}

/// One node's result in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeRecord {
    /// Run id.
    pub run_id: String,
    /// Asset name.
    pub node: String,
    /// `source` or `model`.
    pub kind: String,
    /// `success`, `failed`, `skipped`, `cancelled`, or `abandoned` (unfinished when its run's process
    /// died).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Rows read.
    pub rows_in: Option<i64>,
    /// Rows written.
    pub rows_out: Option<i64>,
    /// Rows quarantined.
    pub rows_quarantined: Option<i64>,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: String,
    /// Duration.
    pub duration_ms: i64,
    /// Error message, for failures.
    pub error: Option<String>,
    /// Delta version published.
    pub version: Option<i64>,
}

/// One check's recorded result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckRecord {
    /// Run id.
    pub run_id: String,
    /// Check name.
    pub check_name: String,
    /// Model.
    pub model: String,
    /// Kind.
    pub kind: String,
    /// Column.
    pub column_name: Option<String>,
    /// `error` or `warn`.
    pub severity: String,
    /// `pass`, `warn`, `fail`.
    pub status: String,
    /// Offending rows.
    pub failing_rows: i64,
    /// Sample of offending rows (JSON array).
    pub sample: serde_json::Value,
    /// Explanation.
    pub message: Option<String>,
    /// When.
    pub checked_at: String,
}

/// The state database.
#[derive(Debug)]
pub struct StateStore {
    conn: Mutex<Connection>,
    path: String,
}

impl StateStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
                path: display.clone(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StateError::Sqlite {
            path: display.clone(),
            source,
        })?;
        let store = StateStore {
            conn: Mutex::new(conn),
            path: display,
        };
        store.with(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            // In WAL mode NORMAL still never corrupts the database; a power cut may only lose the
            // last records. Data lives in the lake (whose commits carry their own positions), and
            // FULL would cost an fsync per node event: most of a small node's scheduling time.
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.execute_batch(SCHEMA)?;
            c.execute_batch(crate::control::SCHEMA)?;
            c.execute_batch(crate::abandon::SCHEMA)
        })?;
        Ok(store)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<StateStore, StateError> {
        let conn = Connection::open_in_memory().map_err(|source| StateError::Sqlite {
            path: ":memory:".into(),
            source,
        })?;
        let store = StateStore {
            conn: Mutex::new(conn),
            path: ":memory:".into(),
        };
        store.with(|c| {
            c.execute_batch(SCHEMA)?;
            c.execute_batch(crate::control::SCHEMA)?;
            c.execute_batch(crate::abandon::SCHEMA)
        })?;
        Ok(store)
    }

    /// Runs `f` on the connection (the scheduler's tables live in `crate::schedule::store`).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
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
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![run_id, command, selection, started_at],
            )?;
            StateStore::record_run_process(&tx, run_id)?;
            tx.commit()
        })
    }

    /// Records the end of a run with its counts.
    pub fn finish_run(&self, r: &RunRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, nodes_ok = ?4, nodes_failed = ?5, nodes_skipped = ?6,
                 checks_passed = ?7, checks_warned = ?8, checks_failed = ?9 WHERE run_id = ?1",
                params![r.run_id, r.status, r.finished_at, r.nodes_ok, r.nodes_failed, r.nodes_skipped, r.checks_passed, r.checks_warned, r.checks_failed],
            )
            .map(|_| ())
        })
    }

    /// Records one node result.
    pub fn record_node(&self, n: &NodeRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO node_runs (run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined,
                 started_at, finished_at, duration_ms, error, version) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![n.run_id, n.node, n.kind, n.status, n.attempts, n.rows_in, n.rows_out, n.rows_quarantined, n.started_at, n.finished_at, n.duration_ms, n.error, n.version],
            )
            .map(|_| ())
        })
    }

    /// Records one check result.
    pub fn record_check(&self, r: &CheckRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO check_results (run_id, check_name, model, kind, column_name, severity, status,
                 failing_rows, sample, message, checked_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                params![r.run_id, r.check_name, r.model, r.kind, r.column_name, r.severity, r.status, r.failing_rows, r.sample.to_string(), r.message, r.checked_at],
            )
            .map(|_| ())
        })
    }

    /// Records a node's high-water mark (a mirror of what its last commit recorded).
    pub fn set_watermark(
        &self,
        node: &str,
        value: &serde_json::Value,
        run_id: &str,
        at: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO watermarks (node, value, run_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, updated_at = excluded.updated_at",
                params![node, value.to_string(), run_id, at],
            )
            .map(|_| ())
        })
    }

    /// A node's recorded high-water mark.
    pub fn watermark(&self, node: &str) -> Result<Option<serde_json::Value>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM watermarks WHERE node = ?1",
                [node],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .map(|v| v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT run_id, command, selection, status, started_at, finished_at, nodes_ok, nodes_failed, nodes_skipped,
                 checks_passed, checks_warned, checks_failed FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], run_from_row)?;
            rows.collect()
        })
    }

    /// One run.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT run_id, command, selection, status, started_at, finished_at, nodes_ok, nodes_failed, nodes_skipped,
                 checks_passed, checks_warned, checks_failed FROM runs WHERE run_id = ?1",
                [run_id],
                run_from_row,
            )
            .optional()
        })
    }

    /// The node results of a run, in start order.
    pub fn nodes_of_run(&self, run_id: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query("WHERE run_id = ?1 ORDER BY started_at, node", run_id)
    }

    /// The latest result of every node.
    pub fn latest_nodes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query(
            "WHERE rowid IN (SELECT rowid FROM node_runs n WHERE finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node)) AND ?1 = ?1 ORDER BY node",
            "",
        )
    }

    /// The latest successful result of every node.
    pub fn latest_successes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query(
            "WHERE status = 'success' AND rowid IN (SELECT rowid FROM node_runs n WHERE status = 'success' AND finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node AND m.status = 'success')) AND ?1 = ?1 ORDER BY node",
            "",
        )
    }

    /// History of one node, newest first.
    pub fn node_history(&self, node: &str, limit: usize) -> Result<Vec<NodeRecord>, StateError> {
        let mut v = self.node_query("WHERE node = ?1 ORDER BY finished_at DESC", node)?;
        v.truncate(limit);
        Ok(v)
    }

    fn node_query(&self, tail: &str, arg: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined, started_at, finished_at,
                 duration_ms, error, version FROM node_runs {tail}"
            ))?;
            let rows = stmt.query_map([arg], |r| {
                Ok(NodeRecord {
                    run_id: r.get(0)?,
                    node: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    rows_in: r.get(5)?,
                    rows_out: r.get(6)?,
                    rows_quarantined: r.get(7)?,
                    started_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    duration_ms: r.get(10)?,
                    error: r.get(11)?,
                    version: r.get(12)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Check results of a run.
    pub fn checks_of_run(&self, run_id: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.check_query("WHERE run_id = ?1 ORDER BY model, check_name", run_id)
    }

    /// The latest result of every check.
    pub fn latest_checks(&self) -> Result<Vec<CheckRecord>, StateError> {
        self.check_query(
            "WHERE rowid IN (SELECT rowid FROM check_results c WHERE checked_at = (SELECT max(checked_at) FROM check_results d WHERE d.check_name = c.check_name)) AND ?1 = ?1 ORDER BY model, check_name",
            "",
        )
    }

    fn check_query(&self, tail: &str, arg: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT run_id, check_name, model, kind, column_name, severity, status, failing_rows, sample, message, checked_at
                 FROM check_results {tail}"
            ))?;
            let rows = stmt.query_map([arg], |r| {
                let sample: Option<String> = r.get(8)?;
                Ok(CheckRecord {
                    run_id: r.get(0)?,
                    check_name: r.get(1)?,
                    model: r.get(2)?,
                    kind: r.get(3)?,
                    column_name: r.get(4)?,
                    severity: r.get(5)?,
                    status: r.get(6)?,
                    failing_rows: r.get(7)?,
                    sample: sample.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(serde_json::Value::Null),
                    message: r.get(9)?,
                    checked_at: r.get(10)?,
                })
            })?;
            rows.collect()
        })
    }
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.get(0)?,
        command: r.get(1)?,
        selection: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        nodes_ok: r.get(6)?,
        nodes_failed: r.get(7)?,
        nodes_skipped: r.get(8)?,
        checks_passed: r.get(9)?,
        checks_warned: r.get(10)?,
        checks_failed: r.get(11)?,
    })
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
