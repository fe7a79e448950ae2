//! Abandoned runs: a run whose process died (SIGKILL, OOM, power cut) never records its end. Each run
//! records the process executing it and touches a heartbeat while it runs; a `running` run whose
//! process is provably gone is marked `abandoned`, so it can be retried and does not hold triggers
//! back.
//!
//! "Provably gone": on the same boot and PID namespace, no such PID, a zombie, or a PID now held by a
//! process started at another time. A run of another machine, container or boot cannot be looked up:
//! it is abandoned when its heartbeat is older than [`HEARTBEAT_HORIZON`]. A run recorded before
//! processes were (no record at all) counts as crashed after [`UNFINISHED_HORIZON`], as triggers
//! already took it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};

use crate::control::now_ms;
use crate::process::{ProcessId, Verdict, start_ticks};
use crate::schedule::store::UNFINISHED_HORIZON;
use crate::state::{StateError, StateStore};

/// Tables of this module (created after the rest of the state schema, so existing databases gain
/// them on open).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS run_processes (
    run_id TEXT PRIMARY KEY, process TEXT NOT NULL, start_ticks INTEGER, heartbeat_ms INTEGER NOT NULL,
    plan TEXT);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
";

/// How often a run touches its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a run whose process cannot be looked up may go without a heartbeat before it counts as
/// abandoned (generous: a busy machine may delay heartbeats, and a wrong verdict costs a rerun).
pub const HEARTBEAT_HORIZON: Duration = Duration::from_secs(600);

/// A run marked abandoned, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedRun {
    /// The run.
    pub run_id: String,
    /// Why it is abandoned ("the process running it (pid 42) is gone").
    pub reason: String,
}

/// What a cancel request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// No such run.
    Unknown,
    /// The run was running; it stops within a fraction of a second.
    Requested,
    /// The run's process was gone: it is marked abandoned (now, or before) and can be retried.
    Abandoned {
        /// Why (the reason recorded with the run).
        reason: String,
    },
    /// The run had already finished with this status.
    Finished {
        /// Its status.
        status: String,
    },
}

struct Candidate {
    run_id: String,
    started_at: String,
    process: Option<String>,
    start_ticks: Option<i64>,
    heartbeat_ms: Option<i64>,
    lease_process: Option<String>,
}

impl StateStore {
    /// Records that this process executes run `run_id` (part of [`StateStore::start_run`]).
    pub(crate) fn record_run_process(
        c: &rusqlite::Connection,
        run_id: &str,
    ) -> rusqlite::Result<()> {
        let me = ProcessId::current();
        let ticks = me
            .as_ref()
            .and_then(|p| start_ticks(p.pid))
            .map(|t| t as i64);
        c.execute(
            "INSERT OR REPLACE INTO run_processes (run_id, process, start_ticks, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, me.map(|p| p.to_string()).unwrap_or_default(), ticks, now_ms()],
        )
        .map(|_| ())
    }

    /// Records the nodes run `run_id` is to execute (with their kind), so that when it is abandoned,
    /// the ones it did not finish are recorded and a retry runs them.
    pub fn set_run_plan(&self, run_id: &str, nodes: &[(String, String)]) -> Result<(), StateError> {
        let plan = nodes
            .iter()
            .map(|(n, k)| format!("{n}\t{k}"))
            .collect::<Vec<_>>()
            .join("\n");
        self.with(|c| {
            c.execute(
                "UPDATE run_processes SET plan = ?2 WHERE run_id = ?1",
                params![run_id, plan],
            )
            .map(|_| ())
        })
    }

    /// Touches run `run_id`'s heartbeat. False when the run is no longer `running` (another process
    /// marked it abandoned: it should stop, as a retry may already run its nodes).
    pub fn heartbeat_run(&self, run_id: &str) -> Result<bool, StateError> {
        let changed = self.with(|c| {
            c.execute(
                "UPDATE run_processes SET heartbeat_ms = ?2 WHERE run_id = ?1
                 AND EXISTS (SELECT 1 FROM runs WHERE run_id = ?1 AND status <> 'abandoned')",
                params![run_id, now_ms()],
            )
        })?;
        Ok(changed == 1)
    }

    /// Marks every `running` run whose process is provably gone as `abandoned` (see the module
    /// docs), with its unfinished nodes. Never touches a run whose process may be alive. Cheap when
    /// nothing runs: one indexed query.
    pub fn reap_abandoned_runs(&self) -> Result<Vec<AbandonedRun>, StateError> {
        self.reap(None)
    }

    /// [`StateStore::reap_abandoned_runs`] for one run: `Some` when it was just marked abandoned.
    pub fn reap_if_abandoned(&self, run_id: &str) -> Result<Option<AbandonedRun>, StateError> {
        Ok(self.reap(Some(run_id))?.pop())
    }

    /// The error recorded for a run as a whole (why it was abandoned).
    pub fn run_error(&self, run_id: &str) -> Result<Option<String>, StateError> {
        self.with(|c| {
            c.query_row("SELECT error FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
        })
    }

    /// Asks run `run_id` to stop; a run whose process is gone is marked abandoned instead (nothing
    /// would ever read the request).
    pub fn cancel_run(&self, run_id: &str) -> Result<CancelOutcome, StateError> {
        if let Some(a) = self.reap_if_abandoned(run_id)? {
            return Ok(CancelOutcome::Abandoned { reason: a.reason });
        }
        let Some(run) = self.run(run_id)? else {
            return Ok(CancelOutcome::Unknown);
        };
        if run.status == "abandoned" {
            let reason = self.run_error(run_id)?.unwrap_or_default();
            return Ok(CancelOutcome::Abandoned { reason });
        }
        if self.request_cancel(run_id)? {
            Ok(CancelOutcome::Requested)
        } else {
            Ok(CancelOutcome::Finished { status: run.status })
        }
    }

    fn reap(&self, only: Option<&str>) -> Result<Vec<AbandonedRun>, StateError> {
        let candidates = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.run_id, r.started_at, p.process, p.start_ticks, p.heartbeat_ms, o.process
                 FROM runs r LEFT JOIN run_processes p ON p.run_id = r.run_id
                 LEFT JOIN lease_owners o ON o.holder = r.run_id
                 WHERE r.status = 'running' AND r.finished_at IS NULL AND (?1 IS NULL OR r.run_id = ?1)",
            )?;
            let rows = stmt.query_map([only], |r| {
                Ok(Candidate {
                    run_id: r.get(0)?,
                    started_at: r.get(1)?,
                    process: r.get(2)?,
                    start_ticks: r.get(3)?,
                    heartbeat_ms: r.get(4)?,
                    lease_process: r.get(5)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let me = ProcessId::current();
        let now = now_ms();
        let mut reaped = Vec::new();
        for c in candidates {
            let Some(reason) = verdict(&c, me.as_ref(), now) else {
                continue;
            };
            if self.mark_abandoned(&c.run_id, &reason)? {
                tracing::warn!(run_id = %c.run_id, %reason, "run marked abandoned");
                reaped.push(AbandonedRun {
                    run_id: c.run_id,
                    reason,
                });
            }
        }
        Ok(reaped)
    }

    /// Marks the run and its unfinished nodes abandoned, unless it finished meanwhile.
    fn mark_abandoned(&self, run_id: &str, reason: &str) -> Result<bool, StateError> {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let changed = tx.execute(
                "UPDATE runs SET status = 'abandoned', finished_at = ?2, error = ?3
                 WHERE run_id = ?1 AND status = 'running' AND finished_at IS NULL",
                params![run_id, at, reason],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            // Nodes that held a lease were running; the rest of the plan had not started.
            let leased: BTreeSet<String> = {
                let mut stmt = tx.prepare("SELECT node FROM leases WHERE holder = ?1")?;
                let rows = stmt.query_map([run_id], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let plan: Option<String> = tx
                .query_row(
                    "SELECT plan FROM run_processes WHERE run_id = ?1",
                    [run_id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let mut nodes: Vec<(String, String)> = plan
                .iter()
                .flat_map(|p| p.lines())
                .filter_map(|l| l.split_once('\t'))
                .map(|(n, k)| (n.to_string(), k.to_string()))
                .collect();
            for n in &leased {
                if !nodes.iter().any(|(p, _)| p == n) {
                    nodes.push((n.clone(), "unknown".to_string()));
                }
            }
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO node_runs (run_id, node, kind, status, attempts, started_at, finished_at,
                 duration_ms, error) VALUES (?1, ?2, ?3, 'abandoned', ?4, ?5, ?5, 0, ?6)",
            )?;
            for (node, kind) in &nodes {
                let (attempts, error) = if leased.contains(node) {
                    (1, format!("was running when its run was abandoned: {reason}"))
                } else {
                    (0, format!("did not start: its run was abandoned: {reason}"))
                };
                insert.execute(params![run_id, node, kind, attempts, at, error])?;
            }
            drop(insert);
            tx.execute(
                "UPDATE runs SET
                 nodes_ok = (SELECT count(*) FROM node_runs WHERE run_id = ?1 AND status = 'success'),
                 nodes_failed = (SELECT count(*) FROM node_runs WHERE run_id = ?1 AND status = 'failed'),
                 nodes_skipped = (SELECT count(*) FROM node_runs WHERE run_id = ?1
                                  AND status IN ('skipped', 'cancelled', 'abandoned')),
                 checks_passed = (SELECT count(*) FROM check_results WHERE run_id = ?1 AND status = 'pass'),
                 checks_warned = (SELECT count(*) FROM check_results WHERE run_id = ?1 AND status = 'warn'),
                 checks_failed = (SELECT count(*) FROM check_results WHERE run_id = ?1 AND status = 'fail')
                 WHERE run_id = ?1",
                [run_id],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }
}

/// Why candidate `c` is abandoned, or `None` while its process may be alive.
fn verdict(c: &Candidate, me: Option<&ProcessId>, now_ms: i64) -> Option<String> {
    // The run's own record, else (runs recorded before run records existed) its lease owner record.
    let (process, ticks) = match c.process.as_deref().and_then(ProcessId::parse) {
        Some(p) => (Some(p), c.start_ticks.and_then(|t| u64::try_from(t).ok())),
        None => (c.lease_process.as_deref().and_then(ProcessId::parse), None),
    };
    if let (Some(p), Some(me)) = (&process, me) {
        match p.verdict_from(me, ticks) {
            Verdict::Alive => return None,
            Verdict::Gone(how) => {
                return Some(format!("the process running it (pid {}) {how}", p.pid));
            }
            Verdict::CannotTell => {}
        }
    }
    if let Some(beat) = c.heartbeat_ms {
        let silent = now_ms.saturating_sub(beat);
        if silent <= HEARTBEAT_HORIZON.as_millis() as i64 {
            return None;
        }
        let whose = match &process {
            Some(p) => format!(
                "the process running it (pid {}, on another machine, container or boot)",
                p.pid
            ),
            None => "the process running it".to_string(),
        };
        return Some(format!(
            "no heartbeat from {whose} for {} min",
            silent / 60_000
        ));
    }
    let started = DateTime::parse_from_rfc3339(&c.started_at).ok()?;
    let age = Utc::now().signed_duration_since(started);
    (age > UNFINISHED_HORIZON).then(|| {
        format!(
            "no process is recorded for it and it started over {} h ago",
            UNFINISHED_HORIZON.num_hours()
        )
    })
}

/// Touches a run's heartbeat every [`HEARTBEAT_INTERVAL`] until dropped (for runs, like backfills,
/// that are not executed by [`crate::runner::run`], which beats in its own watcher).
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    pub(crate) fn start(state: std::sync::Arc<StateStore>, run_id: String) -> Heartbeat {
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                if let Err(e) = state.heartbeat_run(&run_id) {
                    tracing::warn!(run_id = %run_id, error = %e, "cannot touch the run's heartbeat");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
