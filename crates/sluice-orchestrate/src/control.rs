//! Run control in the state database: cancel requests, node leases, tick claims and per-node logs.
//!
//! Everything here works across processes that share one state database (two `sluice serve`, or a
//! `sluice runs cancel` next to a server): each operation is one atomic SQLite statement.
//!
//! - A **cancel request** for a run is a row; the run polls for it and stops.
//! - A **lease** says which run executes a node right now. A run takes the lease before a node's first
//!   attempt and renews it while the node runs; another run that wants the same node waits until it is
//!   released or expires (the holder died), so one node never runs twice at once. A holder whose
//!   process is known to be gone (same boot and PID namespace, no such PID: it was killed) gives its
//!   lease up at once instead of after the TTL.
//! - A **tick claim** makes one scheduler, not every scheduler, run a given tick of a node.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::process::ProcessId;
use crate::state::{StateError, StateStore};

/// How long a claimed tick stays claimed if its run never finishes (the claiming process died).
const TICK_CLAIM_TTL: Duration = Duration::from_secs(600);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One line of a node's log in a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// When (RFC 3339).
    pub at: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}

impl LogLine {
    /// A line stamped now.
    pub fn now(level: &str, message: impl Into<String>) -> LogLine {
        LogLine {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            level: level.to_string(),
            message: message.into(),
        }
    }
}

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
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO run_cancels (run_id, requested_at) VALUES (?1, ?2)",
                params![run_id, at],
            )
        })?;
        Ok(true)
    }

    /// Whether someone asked run `run_id` to stop.
    pub fn cancel_requested(&self, run_id: &str) -> Result<bool, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT 1 FROM run_cancels WHERE run_id = ?1",
                [run_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
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
        let changed = self.with(|c| {
            if let Some(me) = &me {
                c.execute(
                    "INSERT OR IGNORE INTO lease_owners (holder, process) VALUES (?1, ?2)",
                    params![holder, me.to_string()],
                )?;
            }
            c.execute(
                "INSERT INTO leases (node, holder, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(node) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
                 WHERE leases.expires_ms < ?4 OR leases.holder = excluded.holder",
                params![node, holder, expires, now],
            )
        })?;
        if changed == 1 {
            return Ok(None);
        }
        let other = self.with(|c| {
            c.query_row(
                "SELECT l.holder, o.process FROM leases l
                 LEFT JOIN lease_owners o ON o.holder = l.holder WHERE l.node = ?1",
                [node],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
        })?;
        let Some((other, process)) = other else {
            return Ok(Some(String::new()));
        };
        let dead = match (&me, process.as_deref().and_then(ProcessId::parse)) {
            (Some(me), Some(theirs)) => theirs.is_gone_seen_from(me),
            _ => false,
        };
        if dead {
            // Taken only from that holder, so two runs finding it dead cannot both win.
            let taken = self.with(|c| {
                c.execute(
                    "UPDATE leases SET holder = ?2, expires_ms = ?3 WHERE node = ?1 AND holder = ?4",
                    params![node, holder, expires, other],
                )
            })?;
            if taken == 1 {
                tracing::warn!(node, dead_holder = %other, "took over the lease of a run whose process is gone");
                return Ok(None);
            }
        }
        Ok(Some(other))
    }

    /// Gives the lease on `node` back (only if `holder` still holds it).
    pub fn release_lease(&self, node: &str, holder: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE node = ?1 AND holder = ?2",
                params![node, holder],
            )
            .map(|_| ())
        })
    }

    /// Claims tick `tick` of `node` for `holder`. False when another scheduler claimed it (and its
    /// claim has not expired).
    pub fn claim_tick(&self, node: &str, tick: &str, holder: &str) -> Result<bool, StateError> {
        let now = now_ms();
        let stale = now - TICK_CLAIM_TTL.as_millis() as i64;
        let changed = self.with(|c| {
            c.execute(
                "DELETE FROM tick_claims WHERE claimed_ms < ?1",
                params![now - 86_400_000],
            )?;
            c.execute(
                "INSERT INTO tick_claims (node, tick, holder, claimed_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node, tick) DO UPDATE SET holder = excluded.holder, claimed_ms = excluded.claimed_ms
                 WHERE tick_claims.claimed_ms < ?5 OR tick_claims.holder = excluded.holder",
                params![node, tick, holder, now, stale],
            )
        })?;
        Ok(changed == 1)
    }

    /// Appends lines to a node's log in a run.
    pub fn append_node_log(
        &self,
        run_id: &str,
        node: &str,
        lines: &[LogLine],
    ) -> Result<(), StateError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO node_logs (run_id, node, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for l in lines {
                stmt.execute(params![run_id, node, l.at, l.level, l.message])?;
            }
            Ok(())
        })
    }

    /// A node's log in a run, oldest first.
    pub fn node_log(&self, run_id: &str, node: &str) -> Result<Vec<LogLine>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT at, level, message FROM node_logs WHERE run_id = ?1 AND node = ?2 ORDER BY rowid",
            )?;
            let rows = stmt.query_map(params![run_id, node], |r| {
                Ok(LogLine {
                    at: r.get(0)?,
                    level: r.get(1)?,
                    message: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Records that `node` was built in `run_id` from the last good data of failed `inputs`.
    pub fn set_stale_inputs(
        &self,
        run_id: &str,
        node: &str,
        inputs: &[String],
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO stale_inputs (run_id, node, inputs) VALUES (?1, ?2, ?3)",
                params![run_id, node, inputs.join(",")],
            )
            .map(|_| ())
        })
    }

    /// Per node of `run_id`, the failed inputs it was built without.
    pub fn stale_inputs_of_run(
        &self,
        run_id: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT node, inputs FROM stale_inputs WHERE run_id = ?1")?;
            let rows = stmt.query_map([run_id], |r| {
                let inputs: String = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    inputs.split(',').map(str::to_string).collect(),
                ))
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_db() -> (tempfile::TempDir, StateStore, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = StateStore::open(&path).unwrap();
        let b = StateStore::open(&path).unwrap();
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
        let owner = |holder: &str, process: &ProcessId| {
            a.with(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO lease_owners (holder, process) VALUES (?1, ?2)",
                    params![holder, process.to_string()],
                )
            })
            .unwrap();
        };
        assert_eq!(ProcessId::parse(&gone.to_string()), Some(gone.clone()));
        assert_eq!(a.acquire_lease("n", "run-dead", ttl).unwrap(), None);
        owner("run-dead", &gone);
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
        assert_eq!(a.acquire_lease("m", "run-elsewhere", ttl).unwrap(), None);
        owner(
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
