//! Run history: runs, node results, check results and watermarks, as a trait every backend
//! implements ([`RunHistory`]) and the records it stores.
//!
//! The records are what `sluice runs`, `sluice status`, the HTTP API and the UI show; they are
//! plain data (times as RFC 3339 text, as stored), so a backend needs no type of another crate.

use serde::Serialize;

use crate::StateError;

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
    /// (its process died: `sluice_orchestrate::abandon`).
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

/// The process executing a run, recorded with its start so that a run whose process died can be
/// told apart from a slow one (the judging is done by `sluice_orchestrate::abandon`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProcess {
    /// The process identity (`boot:pid-namespace:pid`), empty when it cannot be known.
    pub process: String,
    /// The process's start time in clock ticks since boot (tells a reused PID apart).
    pub start_ticks: Option<i64>,
    /// The first heartbeat, in milliseconds since the Unix epoch.
    pub heartbeat_ms: i64,
}

/// Runs, node results, check results and watermarks.
///
/// Every method is one atomic change or one consistent read; implementations must be safe to call
/// from several threads and from several processes sharing the database.
pub trait RunHistory: Send + Sync {
    /// Records the start of run `run_id` (status `running`) and the process executing it, in one
    /// transaction.
    fn start_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        started_at: &str,
        process: &RunProcess,
    ) -> Result<(), StateError>;

    /// Records the end of a run with its status and counts.
    fn finish_run(&self, run: &RunRecord) -> Result<(), StateError>;

    /// Records (or replaces) one node's result in a run.
    fn record_node(&self, node: &NodeRecord) -> Result<(), StateError>;

    /// Records (or replaces) one check's result in a run.
    fn record_check(&self, check: &CheckRecord) -> Result<(), StateError>;

    /// Records a node's high-water mark (a mirror of what its last commit recorded).
    fn set_watermark(
        &self,
        node: &str,
        value: &serde_json::Value,
        run_id: &str,
        at: &str,
    ) -> Result<(), StateError>;

    /// A node's recorded high-water mark (`None` also when what is stored is not JSON).
    fn watermark(&self, node: &str) -> Result<Option<serde_json::Value>, StateError>;

    /// The most recent runs, newest first (ties: the later recorded first).
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError>;

    /// One run.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError>;

    /// The node results of a run, by start time, then node.
    fn nodes_of_run(&self, run_id: &str) -> Result<Vec<NodeRecord>, StateError>;

    /// The latest result of every node, by node.
    fn latest_nodes(&self) -> Result<Vec<NodeRecord>, StateError>;

    /// The latest successful result of every node, by node.
    fn latest_successes(&self) -> Result<Vec<NodeRecord>, StateError>;

    /// History of one node, newest first, at most `limit`.
    fn node_history(&self, node: &str, limit: usize) -> Result<Vec<NodeRecord>, StateError>;

    /// Check results of a run, by model, then check.
    fn checks_of_run(&self, run_id: &str) -> Result<Vec<CheckRecord>, StateError>;

    /// The latest result of every check, by model, then check.
    fn latest_checks(&self) -> Result<Vec<CheckRecord>, StateError>;
}
