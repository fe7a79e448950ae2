//! Test helpers for the scheduler: a small project in a temporary folder, a scheduler on a
//! [`ManualClock`], and readers of the events it emits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sluice_core::Project;
use sluice_lake::Lake;
use sluice_transform::{CompiledProject, Engine, compile};
use tokio::sync::{broadcast, oneshot};

use super::*;
use crate::runner::{NodeStatus, RunOptions, RunSummary};
use crate::state::StateStore;

pub(crate) fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, h, m, s).unwrap()
}

pub(crate) fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub(crate) struct Harness {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) dir: PathBuf,
    pub(crate) project: Arc<CompiledProject>,
    pub(crate) engine: Engine,
    pub(crate) state: Arc<StateStore>,
    pub(crate) clock: ManualClock,
    /// The PostgreSQL schema of this test (`SLUICE_TEST_STATE_URL`), dropped after the state.
    pub(crate) _pg: Option<sluice_state::testing::TestSchema>,
}

pub(crate) async fn harness(files: &[(&str, &str)], start: DateTime<Utc>) -> Harness {
    harness_with("", files, start).await
}

/// [`harness`] with `config` (YAML lines) added to `sluice.yml`.
pub(crate) async fn harness_with(
    config: &str,
    files: &[(&str, &str)],
    start: DateTime<Utc>,
) -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // The state backend under test: SQLite in the project, or a PostgreSQL schema of its own.
    let pg = sluice_state::testing::TestSchema::from_env("sched").unwrap();
    match &pg {
        Some(s) => write(
            &dir,
            "sluice.yml",
            &format!("name: sched\nstate: '{}'\n{config}", s.yaml_value()),
        ),
        None => write(&dir, "sluice.yml", &format!("name: sched\n{config}")),
    }
    for (rel, text) in files {
        write(&dir, rel, text);
    }
    let project = Project::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let compiled = compile(Arc::new(project)).unwrap_or_else(|e| panic!("{e:?}"));
    let lake = Lake::open(&compiled.project.lake_location()).unwrap();
    let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();
    let state = StateStore::open(&compiled.project.state_location().unwrap()).unwrap();
    Harness {
        _tmp: tmp,
        dir,
        project: Arc::new(compiled),
        engine,
        state: Arc::new(state),
        clock: ManualClock::new(start),
        _pg: pg,
    }
}

/// Runs one statement on the harness's state database outside every store operation (to leave
/// rows as a killed process would): `sqlite` and `postgres` are the same statement in each dialect,
/// with `params` as `?1…` / `$1…`.
pub(crate) fn raw_sql(h: &Harness, sqlite: &str, postgres: &str, params: &[String]) {
    use sluice_state::StateLocation;
    match h.project.project.state_location().unwrap() {
        StateLocation::Sqlite(path) => {
            sluice_state::SqliteStore::open(&path)
                .unwrap()
                .with(|c| c.execute(sqlite, rusqlite::params_from_iter(params)))
                .unwrap();
        }
        StateLocation::Postgres(url) => {
            // Inlined as literals (test values), from the last so `$1` does not match `$10`.
            let mut sql = postgres.to_string();
            for (i, p) in params.iter().enumerate().rev() {
                sql = sql.replace(
                    &format!("${}", i + 1),
                    &format!("'{}'", p.replace('\'', "''")),
                );
            }
            sluice_state::postgres::PostgresStore::connect(&url)
                .unwrap()
                .worker()
                .call(move |c, rt| {
                    rt.block_on(c.batch_execute(&sql)).map_err(|e| {
                        sluice_state::StateError::Postgres {
                            location: "test".into(),
                            source: Box::new(e),
                        }
                    })
                })
                .unwrap();
        }
    }
}

pub(crate) fn options(sensor_interval: Duration) -> SchedulerOptions {
    SchedulerOptions {
        sensor_interval,
        grace_period: Duration::from_secs(10),
        max_catchup: 100,
        queue_interval: None,
        run: RunOptions {
            retries: 0,
            ..RunOptions::default()
        },
    }
}

/// A running scheduler: its events, its shutdown switch and its task.
pub(crate) struct Running {
    pub(crate) events: broadcast::Receiver<SchedulerEvent>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<Result<(), ScheduleError>>,
}

impl Harness {
    pub(crate) fn scheduler(&self, opts: SchedulerOptions) -> Scheduler {
        Scheduler::new(
            self.project.clone(),
            self.engine.clone(),
            self.state.clone(),
            Arc::new(self.clock.clone()),
            opts,
        )
        .unwrap()
    }

    pub(crate) fn start(&self, opts: SchedulerOptions) -> Running {
        start_scheduler(self.scheduler(opts))
    }

    /// A second scheduler on the same project, lake and state database (its own connection), as a
    /// second `sluice serve` process would be.
    pub(crate) fn second_scheduler(&self, opts: SchedulerOptions) -> Scheduler {
        let state = StateStore::open(&self.project.project.state_location().unwrap()).unwrap();
        Scheduler::new(
            self.project.clone(),
            self.engine.clone(),
            Arc::new(state),
            Arc::new(self.clock.clone()),
            opts,
        )
        .unwrap()
    }
}

/// Runs `s` until [`Running::stop`].
pub(crate) fn start_scheduler(s: Scheduler) -> Running {
    let events = s.subscribe();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(s.run_until(async {
        let _ = rx.await;
    }));
    Running {
        events,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Events up to the moment the scheduler has handled time `t` and has nothing running.
    pub(crate) async fn settle(&mut self, t: DateTime<Utc>) -> Vec<SchedulerEvent> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = matches!(&e, SchedulerEvent::Idle { now, .. } if *now >= t);
            out.push(e);
            if done {
                return out;
            }
        }
    }

    pub(crate) async fn next(&mut self) -> SchedulerEvent {
        // A safety net against a hung test, not a wait for time to pass.
        tokio::time::timeout(Duration::from_secs(120), self.events.recv())
            .await
            .expect("the scheduler went quiet")
            .expect("event stream")
    }

    pub(crate) async fn stop(mut self) -> Vec<SchedulerEvent> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let stopped = matches!(e, SchedulerEvent::Stopped);
            out.push(e);
            if stopped {
                break;
            }
        }
        self.task.await.unwrap().unwrap();
        out
    }
}

pub(crate) fn started(
    events: &[SchedulerEvent],
) -> Vec<(BTreeMap<String, DueReason>, BTreeSet<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::RunStarted {
                due, conditional, ..
            } => Some((due.clone(), conditional.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn finished(events: &[SchedulerEvent]) -> Vec<Arc<RunSummary>> {
    events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::RunFinished { outcome, .. } => Some(
                outcome
                    .clone()
                    .unwrap_or_else(|e| panic!("run failed: {e}")),
            ),
            _ => None,
        })
        .collect()
}

pub(crate) fn ran(summary: &RunSummary) -> BTreeSet<String> {
    for n in &summary.nodes {
        assert_eq!(n.status, NodeStatus::Success, "{n:?}");
    }
    summary.nodes.iter().map(|n| n.node.clone()).collect()
}

pub(crate) fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn idle_wake(events: &[SchedulerEvent]) -> Option<DateTime<Utc>> {
    events.iter().rev().find_map(|e| match e {
        SchedulerEvent::Idle { next_wake, .. } => *next_wake,
        _ => None,
    })
}

pub(crate) const DAY: Duration = Duration::from_secs(86_400);
