//! Orchestration: run the asset graph, remember what happened.
//!
//! [`runner::run`] executes a selection of the graph: source tables are ingested, models are staged,
//! checked and published, in dependency order with bounded parallelism, retrying transient failures and
//! skipping only what depends on a failure. [`state::StateStore`] is the state database (SQLite by
//! default) that records runs, node results, check results and watermarks for the CLI, API and UI.
//! [`schedule::Scheduler`] starts runs by itself inside `sluice serve`: on cron or interval ticks (with
//! catchup after downtime), when an upstream asset has new data, and when new files arrive.

pub mod abandon;
pub mod attempt;
pub mod control;
pub mod export;
pub mod node;
pub mod partition;
pub mod policy;
mod process;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod summary;

pub use abandon::{AbandonedRun, CancelOutcome};
pub use attempt::{NodeExecutor, ProjectExecutor};
pub use control::LogLine;
pub use export::{ExportFailure, ExportReport};
pub use node::{NodeError, NodeOutput};
pub use policy::{NodePolicy, OnFailure, Policies};
pub use retry::{RetryError, retry_selection};
pub use runner::{
    NodeResult, NodeStatus, RunError, RunObserver, RunOptions, RunSummary, new_run_id, run,
};
pub use state::{CheckRecord, NodeRecord, RunRecord, StateError, StateStore};
