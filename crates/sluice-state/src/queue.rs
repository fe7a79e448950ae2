//! The run queue: runs requested from a process that does not execute runs (`sluice serve --role
//! api`), waiting for a scheduler to claim and execute them, as a trait every backend implements
//! ([`RunQueue`]).
//!
//! A queued run is in `runs` at once (status `queued`), so every process lists it; `run_queue` holds
//! its request. Claiming is one statement decided by the database (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`; SQLite: under its write lock), so of several schedulers exactly one gets each run. A
//! claim that never turned into a start (its scheduler died in between) may be claimed again after
//! a while; [`crate::RunHistory::start_run`] moves the run from `queued` to `running` and removes it
//! from the queue.

use crate::StateError;

/// A claimed queued run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRun {
    /// The run.
    pub run_id: String,
    /// What was requested (JSON, written and read by the caller).
    pub request: String,
}

/// Queueing and claiming runs.
pub trait RunQueue: Send + Sync {
    /// Records run `run_id` as `queued` (listed like any run) with its `request`.
    fn enqueue_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        request: &str,
        at: &str,
    ) -> Result<(), StateError>;

    /// Claims the oldest queued run for `holder`: one never claimed, or whose claim (made at
    /// `claimed_ms`) is older than `stale_ms`. `None` when nothing waits.
    fn claim_queued_run(
        &self,
        holder: &str,
        now_ms: i64,
        stale_ms: i64,
    ) -> Result<Option<QueuedRun>, StateError>;

    /// Cancels run `run_id` if it is still queued (status `cancelled`, ended at `at`). False when
    /// it is not queued.
    fn cancel_queued_run(&self, run_id: &str, at: &str) -> Result<bool, StateError>;
}
