//! Orchestration: run the asset graph, remember what happened.
//!
//! [`runner::run`] executes a selection of the graph: source tables are ingested, models are staged,
//! checked and published, in dependency order with bounded parallelism, retrying transient failures and
//! skipping only what depends on a failure. [`state::StateStore`] is the state database (SQLite by
//! default) that records runs, node results, check results and watermarks for the CLI, API and UI.
//! [`schedule::Scheduler`] starts runs by itself inside `sluice serve`: on cron or interval ticks (with
//! catchup after downtime), when an upstream asset has new data, and when new files arrive.
//!
//! # Module map
//!
//! The run core is layered; each layer uses only the layers below it (checked in
//! `tests/module_layers.rs`):
//!
//! | layer | modules | what | uses |
//! |---|---|---|---|
//! | 6 | [`schedule`] | starts runs on ticks, upstream changes and files | `runner` |
//! | 5 | [`runner`] (`dispatch`, `record`) | the run loop: order, parallelism, skips, cancels; recording results | `attempt`, `execute`, `partition`, and below |
//! | 4 | [`attempt`] | one node to its final result: lease, attempts, timeouts, retries | `node`, `summary`, layer 0 |
//! | 4 | [`execute`] (`source`, `model`, `export`) | what one attempt does, by the node's [`sluice_core::NodeId`] | `partition`, `checks`, `node` |
//! | 3 | [`partition`] (`build`, `backfill`) | time partitions: building windows, backfills | `checks`, `summary`, `node`, `ranges` |
//! | 3 | [`maintain`] | table maintenance by policy (after runs) and by hand, recorded as `maintain` runs | `summary`, `state`, `control` |
//! | 2 | [`checks`] | a model's checks against a relation | `node` |
//! | 2 | [`summary`] | data: node results, run totals, run ids | `node`, `control` (log lines) |
//! | 1 | [`node`] | data: node outputs and errors, the [`NodeExecutor`] contract | `ranges` |
//! | 0 | [`ranges`], [`policy`], [`state`], [`control`], [`abandon`], [`retry`] | range sets, policies, the state database | — |
//!
//! Layer 0 is below the run core and does not use it (`abandon` and `retry` read the state of runs,
//! not the code that makes them). Modules of one layer do not use each other: `attempt` drives any
//! [`NodeExecutor`], `execute` is the project's own, and `runner` brings them together.

pub mod abandon;
pub mod attempt;
pub mod checks;
pub mod control;
pub mod execute;
pub mod maintain;
pub mod node;
pub mod partition;
pub mod policy;
mod process;
pub mod queue;
pub mod ranges;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod summary;

pub use abandon::{AbandonedRun, CancelOutcome};
pub use control::LogLine;
pub use execute::export::ExportReport;
pub use execute::{ExecuteOptions, ProjectExecutor};
pub use node::{AttemptResult, ExportFailure, NodeError, NodeExecutor, NodeOutput};
pub use policy::{NodePolicy, OnFailure, Policies};
pub use queue::{QUEUE_CLAIM_TTL, QueueError};
pub use retry::{RetryError, retry_selection};
pub use runner::{RunError, RunObserver, RunOptions, run};
pub use state::{CheckRecord, NodeRecord, RunRecord, StateError, StateStore};
pub use summary::{NodeResult, NodeStatus, RunSummary, new_run_id};
