//! Run control in the state database: cancel requests, node leases, tick claims and per-node logs.
//!
//! Everything here works across processes that share one state database (two `sluice serve`, or a
//! `sluice runs cancel` next to a server): each operation is one atomic operation of the state backend
//! ([`sluice_state::RunControl`]); this module adds this process's identity and clock.
//!
//! - A **cancel request** for a run is a row; the run polls for it and stops.
//! - A **lease** says which run executes a node right now. A run takes the lease before a node's first
//!   attempt and renews it while the node runs; another run that wants the same node waits until it is
//!   released or expires (the holder died), so one node never runs twice at once. A holder whose
//!   process is known to be gone (same boot and PID namespace, no such PID: it was killed) gives its
//!   lease up at once instead of after the TTL.
//! - A **tick claim** makes one scheduler, not every scheduler, run a given tick of a node.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use sluice_state::LeaseOutcome;

/// One line of a node's log in a run (defined by `sluice-state`, whose backends store it).
pub use sluice_state::LogLine;

use crate::process::ProcessId;
use crate::state::{StateError, StateStore, now_ms};

/// How long a claimed tick stays claimed if its run never finishes (the claiming process died).
const TICK_CLAIM_TTL: Duration = Duration::from_secs(600);

impl StateStore {
    /// Asks run `run_id` to stop (it notices within a fraction of a second). Returns false when the
    /// run is unknown or already finished, or its process is gone (it is marked abandoned then:
    /// [`StateStore::cancel_run`] says which).
    pub fn request_cancel(&self, run_id: &str) -> Result<bool, StateError> {
        if self.reap_if_abandoned(run_id)?.is_some() {
            return Ok(false);
        }
        let running = self
            .run(run_id)?
            .is_some_and(|r| r.status == "running" || r.finished_at.is_none());
        if !running {
            return Ok(false);
        }
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.backend().request_cancel(run_id, &at)?;
        Ok(true)
    }

    /// Whether someone asked run `run_id` to stop.
    pub fn cancel_requested(&self, run_id: &str) -> Result<bool, StateError> {
        self.backend().cancel_requested(run_id)
    }

    /// Takes (or renews) the lease on `node` for `holder`. Returns `None` when it is ours now, or the
    /// run that holds it.
    pub fn acquire_lease(
        &self,
        node: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StateError> {
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires = now.saturating_add(ttl_ms);
        let me = ProcessId::current();
        let mine = me.as_ref().map(ToString::to_string);
        let (other, process) =
            match self
                .backend()
                .acquire_lease(node, holder, mine.as_deref(), now, expires)?
            {
                LeaseOutcome::Acquired => return Ok(None),
                LeaseOutcome::Held { holder, process } => (holder, process),
            };
        let dead = match (&me, process.as_deref().and_then(ProcessId::parse)) {
            (Some(me), Some(theirs)) => theirs.is_gone_seen_from(me),
            _ => false,
        };
        if dead
            && self
                .backend()
                .take_over_lease(node, holder, &other, expires)?
        {
            tracing::warn!(node, dead_holder = %other, "took over the lease of a run whose process is gone");
            return Ok(None);
        }
        Ok(Some(other))
    }

    /// Gives the lease on `node` back (only if `holder` still holds it).
    pub fn release_lease(&self, node: &str, holder: &str) -> Result<(), StateError> {
        self.backend().release_lease(node, holder)
    }

    /// Claims tick `tick` of `node` for `holder`. False when another scheduler claimed it (and its
    /// claim has not expired).
    pub fn claim_tick(&self, node: &str, tick: &str, holder: &str) -> Result<bool, StateError> {
        let now = now_ms();
        let stale = now - TICK_CLAIM_TTL.as_millis() as i64;
        self.backend().claim_tick(node, tick, holder, now, stale)
    }

    /// Appends lines to a node's log in a run.
    pub fn append_node_log(
        &self,
        run_id: &str,
        node: &str,
        lines: &[LogLine],
    ) -> Result<(), StateError> {
        self.backend().append_node_log(run_id, node, lines)
    }

    /// A node's log in a run, oldest first.
    pub fn node_log(&self, run_id: &str, node: &str) -> Result<Vec<LogLine>, StateError> {
        self.backend().node_log(run_id, node)
    }

    /// Records that `node` was built in `run_id` from the last good data of failed `inputs`.
    pub fn set_stale_inputs(
        &self,
        run_id: &str,
        node: &str,
        inputs: &[String],
    ) -> Result<(), StateError> {
        self.backend().set_stale_inputs(run_id, node, inputs)
    }

    /// Per node of `run_id`, the failed inputs it was built without.
    pub fn stale_inputs_of_run(
        &self,
        run_id: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, StateError> {
        self.backend().stale_inputs_of_run(run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_db() -> (tempfile::TempDir, StateStore, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = StateStore::open_sqlite(&path).unwrap();
        let b = StateStore::open_sqlite(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn a_lease_is_exclusive_until_released_or_expired() {
        let (_d, a, b) = shared_db();
        let ttl = Duration::from_secs(30);
        assert_eq!(a.acquire_lease("n", "run-a", ttl).unwrap(), None);
        assert_eq!(
            b.acquire_lease("n", "run-b", ttl).unwrap(),
            Some("run-a".to_string())
        );
        // Renewing one's own lease works.
        assert_eq!(a.acquire_lease("n", "run-a", ttl).unwrap(), None);
        // Only the holder can release.
        b.release_lease("n", "run-b").unwrap();
        assert!(b.acquire_lease("n", "run-b", ttl).unwrap().is_some());
        a.release_lease("n", "run-a").unwrap();
        assert_eq!(b.acquire_lease("n", "run-b", ttl).unwrap(), None);
        // An expired lease (its holder died) can be taken over.
        assert_eq!(
            a.acquire_lease("m", "run-a", Duration::from_millis(0))
                .unwrap(),
            None
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(b.acquire_lease("m", "run-b", ttl).unwrap(), None);
    }

    #[test]
    fn one_scheduler_claims_a_tick() {
        let (_d, a, b) = shared_db();
        assert!(a.claim_tick("n", "2026-11-22T10:00:00Z", "s1").unwrap());
        assert!(!b.claim_tick("n", "2026-11-22T10:00:00Z", "s2").unwrap());
        assert!(b.claim_tick("n", "2026-11-22T11:00:00Z", "s2").unwrap());
    }

    #[test]
    fn cancel_requests_only_reach_running_runs() {
        let s = StateStore::in_memory().unwrap();
        assert!(!s.request_cancel("nope").unwrap());
        s.start_run("r1", "run", "", "2026-01-01T00:00:00Z")
            .unwrap();
        assert!(!s.cancel_requested("r1").unwrap());
        assert!(s.request_cancel("r1").unwrap());
        assert!(s.cancel_requested("r1").unwrap());
    }

    #[test]
    fn logs_and_stale_inputs_read_back() {
        let s = StateStore::in_memory().unwrap();
        s.append_node_log(
            "r",
            "n",
            &[
                LogLine::now("warn", "attempt 1 failed"),
                LogLine::now("info", "ok"),
            ],
        )
        .unwrap();
        let log = s.node_log("r", "n").unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].message, "attempt 1 failed");
        s.set_stale_inputs("r", "m", &["a".into(), "b".into()])
            .unwrap();
        assert_eq!(
            s.stale_inputs_of_run("r").unwrap().get("m").unwrap(),
            &vec!["a".to_string(), "b".to_string()]
        );
    }

    /// `holder` takes the lease on `node` as if from process `process`.
    fn lease_from(s: &StateStore, node: &str, holder: &str, process: &ProcessId) {
        let now = now_ms();
        let taken = s
            .backend()
            .acquire_lease(node, holder, Some(&process.to_string()), now, now + 30_000)
            .unwrap();
        assert_eq!(taken, LeaseOutcome::Acquired);
    }

    #[test]
    fn the_lease_of_a_killed_process_is_taken_over_at_once() {
        let Some(me) = ProcessId::current() else {
            eprintln!("skipping: /proc does not identify processes here");
            return;
        };
        let (_d, a, b) = shared_db();
        let ttl = Duration::from_secs(30);
        // A holder in a process that has exited (a child that ran and was reaped).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = ProcessId {
            pid: child.id(),
            ..me.clone()
        };
        child.wait().unwrap();
        assert_eq!(ProcessId::parse(&gone.to_string()), Some(gone.clone()));
        // run-dead took the lease from the process that has exited.
        lease_from(&a, "n", "run-dead", &gone);
        assert_eq!(
            b.acquire_lease("n", "run-b", ttl).unwrap(),
            None,
            "taken over"
        );
        assert_eq!(
            a.acquire_lease("n", "run-c", ttl).unwrap(),
            Some("run-b".to_string()),
            "run-b's process (this one) is alive"
        );
        // A holder on another boot (or machine, or PID namespace) cannot be checked: it keeps its
        // lease until the TTL.
        lease_from(
            &a,
            "m",
            "run-elsewhere",
            &ProcessId {
                boot: "another-boot".into(),
                ..gone.clone()
            },
        );
        assert_eq!(
            b.acquire_lease("m", "run-b", ttl).unwrap(),
            Some("run-elsewhere".to_string())
        );
    }
}
