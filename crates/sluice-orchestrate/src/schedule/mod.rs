//! Scheduling: what runs when, without anyone typing `sluice run`.
//!
//! The scheduler lives in the same process as the engine (`sluice serve`), so starting a run is a
//! function call, not a process launch. Three things make a node due:
//!
//! - **a tick of its cadence** ([`Cadence`]: cron, `@hourly`/`@daily`/`@weekly`/`@monthly`,
//!   `every 15m`, `continuous`). Ticks missed while the process was down follow the node's
//!   [`Catchup`] policy (`latest`: run once; `all`: run once per missed tick). The last handled tick
//!   of each node is kept in the state database (`schedule_ticks`), so catchup survives restarts.
//! - **new upstream data** (`trigger: on_upstream_change`, the default for models without a
//!   schedule): a model runs when one of its inputs wrote rows after the model's last attempt. A run
//!   that lands 0 rows triggers nothing.
//! - **new files** for a `files` source table without a schedule (the file-arrival sensor).
//!
//! Each wake-up gathers what is due into one run (through [`crate::runner::run`]); the
//! on-upstream-change models downstream of those nodes join the same run, and the runner leaves them
//! out if their inputs wrote nothing. A node is never in two runs of one process at once.
//!
//! When the process running a scheduled run dies, the scheduler that marks the run abandoned
//! starts a run of the nodes it did not finish (`takeover`), so several workers sharing one state
//! database lose no tick when one of them is killed.
//!
//! Modules: [`cadence`] (parsing and tick arithmetic), [`clock`] (real and manual time), [`plan`]
//! (reading the fields from sources and models), [`sensor`] (file arrival), [`store`] (state
//! tables), [`scheduler`] (the loop), [`events`] (options and what the loop reports), `shutdown`
//! (the grace period), `takeover` (the work of a dead worker), `queued` (runs requested from API
//! processes).
//!
//! ```no_run
//! # async fn demo(project: std::sync::Arc<sluice_transform::CompiledProject>,
//! #     engine: sluice_transform::Engine, state: std::sync::Arc<sluice_orchestrate::StateStore>)
//! #     -> Result<(), sluice_orchestrate::schedule::ScheduleError> {
//! use std::sync::Arc;
//! use sluice_orchestrate::schedule::{Scheduler, SchedulerOptions, SystemClock};
//!
//! let scheduler = Scheduler::new(project, engine, state, Arc::new(SystemClock), SchedulerOptions::default())?;
//! for next in scheduler.upcoming()? {
//!     println!("{}: {}", next.node, next.trigger);
//! }
//! scheduler.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod cadence;
pub mod clock;
pub mod events;
pub mod maintenance;
pub mod plan;
mod queued;
pub mod scheduler;
pub mod sensor;
mod shutdown;
pub mod store;
mod takeover;

#[cfg(test)]
mod maintenance_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use cadence::{CONTINUOUS_INTERVAL, Cadence, Catchup, Ticks};
pub use clock::{Clock, ManualClock, SystemClock};
pub use events::{DueReason, ScheduleInfo, SchedulerEvent, SchedulerOptions};
pub use maintenance::MaintenanceSchedule;
pub use plan::{FileSensorSpec, NodeKind, NodeSchedule, SchedulePlan};
pub use scheduler::{Scheduler, upcoming};
pub use store::RunMark;

/// What the accepted `schedule:` forms are, for error messages.
pub const ACCEPTED_SCHEDULES: &str = "a cron expression of 5 fields (`0 * * * *`) or 6 with seconds first (`30 0 * * * *`), \
     `@hourly`, `@daily`, `@weekly`, `@monthly`, `every <duration>` (e.g. `every 15m`, `every 1h30m`) or `continuous`";

/// Errors of scheduling.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A `schedule:` value is not one of the accepted forms.
    #[error("invalid schedule `{value}`: {reason}; expected {ACCEPTED_SCHEDULES}")]
    Cadence {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `catchup:` value is neither `all` nor `latest`.
    #[error(
        "invalid catchup `{value}`; expected `latest` (run once for missed ticks, the default) or `all` (run once per missed tick)"
    )]
    Catchup {
        /// The value as written.
        value: String,
    },
    /// A `trigger:` value is not known.
    #[error("invalid trigger `{value}`; expected `on_upstream_change` or `manual`")]
    Trigger {
        /// The value as written.
        value: String,
    },
    /// A field that must be text is something else.
    #[error("expected text, found `{found}`")]
    NotText {
        /// The value found.
        found: String,
    },
    /// A problem located in a project file.
    #[error("{}{}{}: field `{field}`: {source}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), column.map(|c| format!(":{c}")).unwrap_or_default())]
    At {
        /// The file.
        file: PathBuf,
        /// The line, when known.
        line: Option<usize>,
        /// The column, when known.
        column: Option<usize>,
        /// The dotted field, e.g. `tables[0].schedule`.
        field: String,
        /// The problem.
        source: Box<ScheduleError>,
    },
    /// Several problems in the project's schedules.
    #[error("{} problem(s) in schedules:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Plan(Vec<ScheduleError>),
    /// A project file could not be read (or a `${ENV}` in a glob is not set).
    #[error(transparent)]
    Config(#[from] sluice_core::ConfigError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A file sensor could not list its files or read its table.
    #[error("file sensor for `{node}`: {message}")]
    Sensor {
        /// The source table.
        node: String,
        /// What failed.
        message: String,
    },
}

impl ScheduleError {
    /// The individual problems (one for anything but [`ScheduleError::Plan`]).
    pub fn problems(&self) -> Vec<&ScheduleError> {
        match self {
            ScheduleError::Plan(list) => list.iter().collect(),
            other => vec![other],
        }
    }
}
