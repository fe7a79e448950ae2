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

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sluice_state::RunningRun;

use crate::process::{ProcessId, Verdict};
use crate::state::{StateError, StateStore, now_ms};

/// How long an unfinished run counts as running (for the upstream-change trigger), and after which
/// a run whose process left no record counts as crashed.
pub const UNFINISHED_HORIZON: chrono::Duration = chrono::Duration::hours(6);

/// How often a run touches its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a run whose process cannot be looked up (another machine) may go without a heartbeat
/// before it counts as abandoned: nine missed heartbeats, and three times the node lease's 30 s, so
/// the dead run's leases have expired and a worker takes its scheduled work over within about a
/// minute and a half. A run wrongly taken for dead stops at its next heartbeat.
pub const HEARTBEAT_HORIZON: Duration = Duration::from_secs(90);

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
    /// The run was still queued (`sluice serve --role api`): it is cancelled and will not start.
    Dequeued,
    /// The run had already finished with this status.
    Finished {
        /// Its status.
        status: String,
    },
}

impl StateStore {
    /// Records the nodes run `run_id` is to execute (with their kind), so that when it is abandoned,
    /// the ones it did not finish are recorded and a retry runs them.
    pub fn set_run_plan(&self, run_id: &str, nodes: &[(String, String)]) -> Result<(), StateError> {
        self.backend().set_run_plan(run_id, nodes)
    }

    /// Touches run `run_id`'s heartbeat. False when the run is no longer `running` (another process
    /// marked it abandoned: it should stop, as a retry may already run its nodes).
    pub fn heartbeat_run(&self, run_id: &str) -> Result<bool, StateError> {
        self.backend().heartbeat_run(run_id, now_ms())
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
        self.backend().run_error(run_id)
    }

    /// Asks run `run_id` to stop; a queued run is cancelled before it starts; a run whose process
    /// is gone is marked abandoned instead (nothing would ever read the request).
    pub fn cancel_run(&self, run_id: &str) -> Result<CancelOutcome, StateError> {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        if self.backend().cancel_queued_run(run_id, &at)? {
            return Ok(CancelOutcome::Dequeued);
        }
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
        let candidates = self.backend().running_runs(only)?;
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
        self.backend().mark_abandoned(run_id, reason, &at)
    }
}

/// Why candidate `c` is abandoned, or `None` while its process may be alive.
fn verdict(c: &RunningRun, me: Option<&ProcessId>, now_ms: i64) -> Option<String> {
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
        return Some(format!("no heartbeat from {whose} for {} s", silent / 1000));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{exited_process, start_ticks};
    use crate::retry::{RetryError, retry_selection};
    use crate::state::NodeRecord;

    fn node(run: &str, name: &str, status: &str) -> NodeRecord {
        NodeRecord {
            run_id: run.into(),
            node: name.into(),
            kind: "source".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: Some(2),
            rows_quarantined: None,
            started_at: "2030-01-01T00:00:01Z".into(),
            finished_at: "2030-01-01T00:00:02Z".into(),
            duration_ms: 1000,
            error: None,
            version: None,
        }
    }

    /// Run `run` as if started (now) by `process`, with `heartbeat_ms`.
    fn owned_by(s: &StateStore, run: &str, process: &str, ticks: Option<i64>, heartbeat_ms: i64) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let process = sluice_state::RunProcess {
            process: process.to_string(),
            start_ticks: ticks,
            heartbeat_ms,
        };
        s.backend()
            .start_run(run, "run", "", &now, &process)
            .unwrap();
    }

    fn status(s: &StateStore, run: &str) -> String {
        s.run(run).unwrap().unwrap().status
    }

    #[test]
    fn a_run_whose_process_exited_is_abandoned_and_can_be_retried() {
        let Some(gone) = exited_process() else {
            eprintln!("skipping: /proc does not identify processes here");
            return;
        };
        let s = StateStore::in_memory().unwrap();
        owned_by(&s, "r1", &gone.to_string(), None, now_ms());
        s.set_run_plan(
            "r1",
            &[
                ("a".into(), "source".into()),
                ("b".into(), "model".into()),
                ("c".into(), "model".into()),
            ],
        )
        .unwrap();
        s.record_node(&node("r1", "a", "success")).unwrap();
        // b was running: it holds a lease.
        let now = now_ms();
        s.backend()
            .acquire_lease("b", "r1", None, now, now + 30_000)
            .unwrap();
        // While it looks running, a retry would refuse; the retry itself finds it dead.
        assert_eq!(retry_selection(&s, "r1").unwrap(), ["b", "c"]);
        let run = s.run("r1").unwrap().unwrap();
        assert_eq!(run.status, "abandoned");
        assert!(run.finished_at.is_some());
        assert_eq!(
            (run.nodes_ok, run.nodes_failed, run.nodes_skipped),
            (1, 0, 2)
        );
        let reason = s.run_error("r1").unwrap().unwrap();
        assert_eq!(
            reason,
            format!("the process running it (pid {}) is gone", gone.pid)
        );
        let nodes = s.nodes_of_run("r1").unwrap();
        let b = nodes.iter().find(|n| n.node == "b").unwrap();
        assert_eq!(
            (b.status.as_str(), b.kind.as_str(), b.attempts),
            ("abandoned", "model", 1)
        );
        assert!(b.error.as_deref().unwrap().contains("was running"), "{b:?}");
        let c = nodes.iter().find(|n| n.node == "c").unwrap();
        assert_eq!((c.status.as_str(), c.attempts), ("abandoned", 0));
        // Once only; cancelling it answers that it is abandoned.
        assert!(s.reap_abandoned_runs().unwrap().is_empty());
        assert_eq!(
            s.cancel_run("r1").unwrap(),
            CancelOutcome::Abandoned { reason }
        );
        assert!(!s.request_cancel("r1").unwrap());
        // A node that finishes after all (a wrong verdict) overwrites its abandoned record.
        s.record_node(&node("r1", "c", "success")).unwrap();
        assert_eq!(retry_selection(&s, "r1").unwrap(), ["b"]);
    }

    #[test]
    fn cancel_of_a_dead_run_marks_it_abandoned() {
        let Some(gone) = exited_process() else {
            return;
        };
        let s = StateStore::in_memory().unwrap();
        owned_by(&s, "r1", &gone.to_string(), None, now_ms());
        match s.cancel_run("r1").unwrap() {
            CancelOutcome::Abandoned { reason } => assert!(reason.contains("is gone"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(status(&s, "r1"), "abandoned");
        assert!(!s.cancel_requested("r1").unwrap());
        // Nothing recorded, no plan: nothing to retry (but it is no longer "still running").
        assert!(matches!(
            retry_selection(&s, "r1"),
            Err(RetryError::NothingToRetry(_))
        ));
        assert_eq!(s.cancel_run("nope").unwrap(), CancelOutcome::Unknown);
    }

    #[test]
    fn a_run_of_a_live_process_is_never_reaped() {
        let Some(me) = ProcessId::current() else {
            return;
        };
        let s = StateStore::in_memory().unwrap();
        // Started here: this process's own run.
        s.start_run("mine", "run", "", "2026-01-01T00:00:00Z")
            .unwrap();
        // This process, recorded with a stale heartbeat: the PID check wins.
        let ticks = start_ticks(me.pid).map(|t| t as i64);
        owned_by(&s, "stale-but-alive", &me.to_string(), ticks, 0);
        assert!(s.reap_abandoned_runs().unwrap().is_empty());
        assert_eq!(status(&s, "mine"), "running");
        assert_eq!(status(&s, "stale-but-alive"), "running");
        assert!(s.heartbeat_run("mine").unwrap());
        assert_eq!(s.cancel_run("mine").unwrap(), CancelOutcome::Requested);
        assert!(matches!(
            retry_selection(&s, "mine"),
            Err(RetryError::StillRunning(_))
        ));
        // The same PID with another start time is an earlier process that had this PID.
        owned_by(
            &s,
            "reused",
            &me.to_string(),
            ticks.map(|t| t + 1),
            now_ms(),
        );
        let reaped = s.reap_abandoned_runs().unwrap();
        assert_eq!(reaped.len(), 1);
        assert_eq!(reaped[0].run_id, "reused");
        assert!(reaped[0].reason.contains("a newer process has its PID"));
    }

    #[test]
    fn a_run_elsewhere_is_judged_by_its_heartbeat() {
        let s = StateStore::in_memory().unwrap();
        let elsewhere = "another-boot 4242 pid:[4026531836]";
        let horizon = HEARTBEAT_HORIZON.as_millis() as i64;
        owned_by(&s, "fresh", elsewhere, Some(1), now_ms() - horizon / 2);
        owned_by(&s, "stale", elsewhere, Some(1), now_ms() - horizon - 60_000);
        // No /proc at all on the recording side: heartbeat only.
        owned_by(&s, "unidentified", "", None, now_ms());
        let reaped = s.reap_abandoned_runs().unwrap();
        assert_eq!(reaped.len(), 1, "{reaped:?}");
        assert_eq!(reaped[0].run_id, "stale");
        assert!(
            reaped[0]
                .reason
                .starts_with("no heartbeat from the process running it (pid 4242"),
            "{}",
            reaped[0].reason
        );
        assert_eq!(status(&s, "fresh"), "running");
        assert_eq!(status(&s, "unidentified"), "running");
        // The abandoned run's heartbeat tells it to stop, should it be alive after all.
        assert!(!s.heartbeat_run("stale").unwrap());
        assert!(s.heartbeat_run("fresh").unwrap());
    }

    #[test]
    fn runs_recorded_before_run_processes_fall_back_to_lease_owners_and_age() {
        let db = std::sync::Arc::new(sluice_state::SqliteStore::in_memory().unwrap());
        let s = StateStore::from_backend(db.clone());
        let old = (Utc::now() - UNFINISHED_HORIZON - chrono::Duration::minutes(5))
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let recent = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        for (run, at) in [("old", &old), ("recent", &recent), ("leased", &recent)] {
            s.start_run(run, "run", "", at).unwrap();
        }
        // As an older sluice left them: no process records (no store operation deletes them).
        db.with(|c| c.execute("DELETE FROM run_processes", []))
            .unwrap();
        let dead_owner = exited_process();
        if let Some(gone) = &dead_owner {
            // Its only trace: the process its first lease recorded.
            let now = now_ms();
            s.backend()
                .acquire_lease("x", "leased", Some(&gone.to_string()), now, now + 30_000)
                .unwrap();
        }
        let mut reaped: Vec<String> = s
            .reap_abandoned_runs()
            .unwrap()
            .into_iter()
            .map(|a| a.run_id)
            .collect();
        reaped.sort();
        let expected: &[&str] = if dead_owner.is_some() {
            &["leased", "old"]
        } else {
            &["old"]
        };
        assert_eq!(reaped, expected);
        assert_eq!(status(&s, "recent"), "running");
        assert!(!s.unfinished_runs().unwrap().contains("old"));
    }
}
