//! The processes executing runs, their heartbeats, and abandoning a run whose process died, as a
//! trait every backend implements ([`RunProcesses`]) and its records.
//!
//! The judging (is that process gone? is its heartbeat too old?) is done by the caller
//! (`sluice_orchestrate::abandon`); the backend stores what it needs and applies the verdict in one
//! transaction that cannot overwrite a run that finished meanwhile.

use std::collections::BTreeSet;

use crate::StateError;

/// A run recorded as `running` and unfinished, with what tells whether its process is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRun {
    /// The run.
    pub run_id: String,
    /// Its start (RFC 3339).
    pub started_at: String,
    /// The process executing it ([`crate::RunProcess::process`]); `None` for runs recorded before
    /// processes were.
    pub process: Option<String>,
    /// That process's start time in clock ticks since boot.
    pub start_ticks: Option<i64>,
    /// Its latest heartbeat, in milliseconds since the Unix epoch.
    pub heartbeat_ms: Option<i64>,
    /// The process recorded by the run's first lease (the only trace of runs recorded before run
    /// processes were).
    pub lease_process: Option<String>,
}

/// Run plans, heartbeats and abandoning.
pub trait RunProcesses: Send + Sync {
    /// Records the nodes run `run_id` is to execute, as `(node, kind)`, so that when it is abandoned
    /// the ones it did not finish are recorded and a retry runs them.
    fn set_run_plan(&self, run_id: &str, nodes: &[(String, String)]) -> Result<(), StateError>;

    /// Touches run `run_id`'s heartbeat (`now_ms`). False when the run is abandoned or has no
    /// process record (it should stop: a retry may already run its nodes).
    fn heartbeat_run(&self, run_id: &str, now_ms: i64) -> Result<bool, StateError>;

    /// The runs that are `running` and unfinished (only `only`, when given).
    fn running_runs(&self, only: Option<&str>) -> Result<Vec<RunningRun>, StateError>;

    /// Marks run `run_id` abandoned at `at` with `reason`, in one transaction: the nodes it held
    /// leases on were running (`abandoned`, 1 attempt), the rest of its plan had not started
    /// (`abandoned`, 0 attempts); nodes already recorded keep their result; the run's counts are
    /// recomputed. False, changing nothing, when the run is no longer `running` and unfinished.
    fn mark_abandoned(&self, run_id: &str, reason: &str, at: &str) -> Result<bool, StateError>;

    /// The error recorded for a run as a whole (why it was abandoned).
    fn run_error(&self, run_id: &str) -> Result<Option<String>, StateError>;

    /// Runs started after `started_after` (RFC 3339) that have not finished.
    fn unfinished_runs(&self, started_after: &str) -> Result<BTreeSet<String>, StateError>;
}
