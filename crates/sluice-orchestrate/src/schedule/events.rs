//! The scheduler's options and what it reports: why a node runs, what happened, what comes next.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::runner::{RunOptions, RunSummary};

/// How the scheduler behaves.
#[derive(Clone)]
pub struct SchedulerOptions {
    /// How often file sensors look for new files; the state database is also checked this often for
    /// upstream changes made by other processes (`sluice run`).
    pub sensor_interval: Duration,
    /// On shutdown, how long in-flight runs may take to finish before they are cancelled.
    pub grace_period: Duration,
    /// The most missed ticks one node runs under `catchup: all` (the newest ones are kept).
    pub max_catchup: usize,
    /// How often to claim runs queued by API processes (`sluice serve --role api`); `None`: this
    /// scheduler executes no queued runs.
    pub queue_interval: Option<Duration>,
    /// Template for every run (threads, retries, backoff); selection, command and run id are set
    /// by the scheduler.
    pub run: RunOptions,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            sensor_interval: Duration::from_secs(30),
            grace_period: Duration::from_secs(60),
            max_catchup: 100,
            queue_interval: None,
            run: RunOptions::default(),
        }
    }
}

/// Why a node is in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueReason {
    /// A tick of its schedule (the tick's time).
    Tick(DateTime<Utc>),
    /// These upstream assets wrote rows after the node's last attempt.
    UpstreamChanged(Vec<String>),
    /// These files arrived (project-relative names).
    FilesArrived(Vec<String>),
    /// The scheduled run that had it died unfinished (its process was killed); this scheduler
    /// marked that run abandoned and takes its unfinished nodes over.
    TakenOver(String),
    /// Selected by a run requested from an API process and queued for a scheduler (the run's id
    /// was given when it was queued).
    Queued,
}

/// What the scheduler did; see [`Scheduler::subscribe`].
#[derive(Debug, Clone)]
pub enum SchedulerEvent {
    /// A run started.
    RunStarted {
        /// Run id (as recorded in the state database).
        run_id: String,
        /// The due nodes and why.
        due: BTreeMap<String, DueReason>,
        /// On-upstream-change models downstream of them, run only if their inputs write rows.
        conditional: BTreeSet<String>,
    },
    /// A run ended.
    RunFinished {
        /// Run id.
        run_id: String,
        /// Its summary, or why it could not run.
        outcome: Result<Arc<RunSummary>, String>,
    },
    /// A run was cancelled when the grace period after shutdown ran out.
    RunCancelled {
        /// Run id.
        run_id: String,
    },
    /// Something went wrong that does not stop the scheduler (logged too).
    Problem {
        /// What.
        message: String,
    },
    /// Nothing is running; the scheduler sleeps until `next_wake`.
    Idle {
        /// The time it looked at.
        now: DateTime<Utc>,
        /// When it wakes up next (unless a run or shutdown wakes it).
        next_wake: Option<DateTime<Utc>>,
    },
    /// Shutdown was asked for; `in_flight` runs get the grace period to finish.
    Stopping {
        /// Runs still going.
        in_flight: usize,
    },
    /// `run_until` is returning.
    Stopped,
}

/// One node's trigger and next tick, for display.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInfo {
    /// Asset name.
    pub node: String,
    /// `@hourly (catchup latest)`, `on upstream change`, `on file arrival`, ...
    pub trigger: String,
    /// The next tick (now, when ticks were missed); `None` for unscheduled triggers.
    pub next_tick: Option<DateTime<Utc>>,
    /// Ticks missed since the last handled one.
    pub missed: u64,
}
