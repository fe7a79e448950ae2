//! What the scheduler keeps and reads: the newest handled tick per scheduled node, and per node the
//! last run that changed its data and the last that attempted it, as a trait every backend
//! implements ([`Schedules`]).

use std::collections::BTreeMap;

use crate::StateError;

/// A point in a node's history: the run it happened in and when (RFC 3339, as `node_runs` stores
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMark {
    /// The run.
    pub run_id: String,
    /// When: `finished_at` for a data change, `started_at` for an attempt.
    pub at: String,
}

/// Schedule ticks, data-change and attempt marks.
pub trait Schedules: Send + Sync {
    /// The newest handled tick of a scheduled node, as stored (RFC 3339).
    fn schedule_tick(&self, node: &str) -> Result<Option<String>, StateError>;

    /// Records that `node`'s tick `tick` (RFC 3339) was handled.
    fn set_schedule_tick(&self, node: &str, tick: &str) -> Result<(), StateError>;

    /// Every recorded tick, by node.
    fn schedule_ticks(&self) -> Result<Vec<(String, String)>, StateError>;

    /// Per node, its newest successful result that wrote at least one row (`at` = its end). Ties on
    /// the time go to the greater run id.
    fn latest_data_changes(&self) -> Result<BTreeMap<String, RunMark>, StateError>;

    /// Per node, its newest result of any status but `abandoned` (`at` = its start). Ties on the
    /// time go to the greater run id.
    fn latest_attempts(&self) -> Result<BTreeMap<String, RunMark>, StateError>;
}
