//! [`RunControl`] on SQLite (tables `run_cancels`, `leases`, `lease_owners`, `tick_claims`,
//! `node_logs`, `stale_inputs`). Each change is one statement, atomic under SQLite's write lock.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::StateError;
use crate::control::{LeaseOutcome, LogLine, RunControl};

/// Tick claims older than this are deleted when a new tick is claimed (their ticks are long past).
const TICK_CLAIM_KEEP_MS: i64 = 86_400_000;

impl RunControl for SqliteStore {
    fn request_cancel(&self, run_id: &str, at: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO run_cancels (run_id, requested_at) VALUES (?1, ?2)
                 ON CONFLICT (run_id) DO NOTHING",
                params![run_id, at],
            )
            .map(|_| ())
        })
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StateError> {
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

    fn acquire_lease(
        &self,
        node: &str,
        holder: &str,
        process: Option<&str>,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<LeaseOutcome, StateError> {
        self.with(|c| {
            if let Some(process) = process {
                c.execute(
                    "INSERT INTO lease_owners (holder, process) VALUES (?1, ?2)
                     ON CONFLICT (holder) DO NOTHING",
                    params![holder, process],
                )?;
            }
            let changed = c.execute(
                "INSERT INTO leases (node, holder, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
                 WHERE leases.expires_ms < ?4 OR leases.holder = excluded.holder",
                params![node, holder, expires_ms, now_ms],
            )?;
            if changed == 1 {
                return Ok(LeaseOutcome::Acquired);
            }
            let other = c
                .query_row(
                    "SELECT l.holder, o.process FROM leases l
                     LEFT JOIN lease_owners o ON o.holder = l.holder WHERE l.node = ?1",
                    [node],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?;
            let (holder, process) = other.unwrap_or_default();
            Ok(LeaseOutcome::Held { holder, process })
        })
    }

    fn take_over_lease(
        &self,
        node: &str,
        holder: &str,
        from: &str,
        expires_ms: i64,
    ) -> Result<bool, StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE leases SET holder = ?2, expires_ms = ?3 WHERE node = ?1 AND holder = ?4",
                params![node, holder, expires_ms, from],
            )
            .map(|n| n == 1)
        })
    }

    fn release_lease(&self, node: &str, holder: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE node = ?1 AND holder = ?2",
                params![node, holder],
            )
            .map(|_| ())
        })
    }

    fn claim_tick(
        &self,
        node: &str,
        tick: &str,
        holder: &str,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM tick_claims WHERE claimed_ms < ?1",
                params![now_ms - TICK_CLAIM_KEEP_MS],
            )?;
            c.execute(
                "INSERT INTO tick_claims (node, tick, holder, claimed_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node, tick) DO UPDATE SET holder = excluded.holder, claimed_ms = excluded.claimed_ms
                 WHERE tick_claims.claimed_ms < ?5 OR tick_claims.holder = excluded.holder",
                params![node, tick, holder, now_ms, stale_before_ms],
            )
            .map(|n| n == 1)
        })
    }

    fn append_node_log(
        &self,
        run_id: &str,
        node: &str,
        lines: &[LogLine],
    ) -> Result<(), StateError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO node_logs (run_id, node, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for l in lines {
                    stmt.execute(params![run_id, node, l.at, l.level, l.message])?;
                }
            }
            tx.commit()
        })
    }

    fn node_log(&self, run_id: &str, node: &str) -> Result<Vec<LogLine>, StateError> {
        self.with(|c| {
            // SQLite's table has no `seq` column: its rowid is the insertion order.
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

    fn set_stale_inputs(
        &self,
        run_id: &str,
        node: &str,
        inputs: &[String],
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO stale_inputs (run_id, node, inputs) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, node) DO UPDATE SET inputs = excluded.inputs",
                params![run_id, node, inputs.join(",")],
            )
            .map(|_| ())
        })
    }

    fn stale_inputs_of_run(
        &self,
        run_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StateError> {
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
