//! [`RunControl`] on PostgreSQL: the statements of `sqlite/control.rs` with `$n` parameters. Leases
//! and tick claims are single conditional upserts, so the row lock PostgreSQL takes on the
//! conflicting row decides between workers on any number of machines.

use std::collections::BTreeMap;

use super::PostgresStore;
use crate::StateError;
use crate::control::{LeaseOutcome, LogLine, RunControl};

/// Tick claims older than this are deleted when a new tick is claimed (as on SQLite).
const TICK_CLAIM_KEEP_MS: i64 = 86_400_000;

impl RunControl for PostgresStore {
    fn request_cancel(&self, run_id: &str, at: &str) -> Result<(), StateError> {
        let (run_id, at) = (run_id.to_string(), at.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO run_cancels (run_id, requested_at) VALUES ($1, $2)
                 ON CONFLICT (run_id) DO NOTHING",
                &[&run_id, &at],
            ))
            .map(|_| ())
        })
    }

    fn cancel_requested(&self, run_id: &str) -> Result<bool, StateError> {
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            rt.block_on(c.query_opt("SELECT 1 FROM run_cancels WHERE run_id = $1", &[&run_id]))
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
        let (node, holder) = (node.to_string(), holder.to_string());
        let process = process.map(str::to_string);
        self.exec(move |c, rt| {
            rt.block_on(async {
                if let Some(process) = &process {
                    c.execute(
                        "INSERT INTO lease_owners (holder, process) VALUES ($1, $2)
                         ON CONFLICT (holder) DO NOTHING",
                        &[&holder, process],
                    )
                    .await?;
                }
                let changed = c
                    .execute(
                        "INSERT INTO leases (node, holder, expires_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
                         WHERE leases.expires_ms < $4 OR leases.holder = excluded.holder",
                        &[&node, &holder, &expires_ms, &now_ms],
                    )
                    .await?;
                if changed == 1 {
                    return Ok(LeaseOutcome::Acquired);
                }
                let other = c
                    .query_opt(
                        "SELECT l.holder, o.process FROM leases l
                         LEFT JOIN lease_owners o ON o.holder = l.holder WHERE l.node = $1",
                        &[&node],
                    )
                    .await?;
                let (holder, process) = other
                    .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
                    .unwrap_or_default();
                Ok(LeaseOutcome::Held { holder, process })
            })
        })
    }

    fn take_over_lease(
        &self,
        node: &str,
        holder: &str,
        from: &str,
        expires_ms: i64,
    ) -> Result<bool, StateError> {
        let (node, holder, from) = (node.to_string(), holder.to_string(), from.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE leases SET holder = $2, expires_ms = $3 WHERE node = $1 AND holder = $4",
                &[&node, &holder, &expires_ms, &from],
            ))
            .map(|n| n == 1)
        })
    }

    fn release_lease(&self, node: &str, holder: &str) -> Result<(), StateError> {
        let (node, holder) = (node.to_string(), holder.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "DELETE FROM leases WHERE node = $1 AND holder = $2",
                &[&node, &holder],
            ))
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
        let (node, tick, holder) = (node.to_string(), tick.to_string(), holder.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                c.execute(
                    "DELETE FROM tick_claims WHERE claimed_ms < $1",
                    &[&(now_ms - TICK_CLAIM_KEEP_MS)],
                )
                .await?;
                c.execute(
                    "INSERT INTO tick_claims (node, tick, holder, claimed_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (node, tick) DO UPDATE SET holder = excluded.holder, claimed_ms = excluded.claimed_ms
                     WHERE tick_claims.claimed_ms < $5 OR tick_claims.holder = excluded.holder",
                    &[&node, &tick, &holder, &now_ms, &stale_before_ms],
                )
                .await
                .map(|n| n == 1)
            })
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
        let (run_id, node, lines) = (run_id.to_string(), node.to_string(), lines.to_vec());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                let stmt = tx
                    .prepare(
                        "INSERT INTO node_logs (run_id, node, at, level, message) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .await?;
                for l in &lines {
                    tx.execute(&stmt, &[&run_id, &node, &l.at, &l.level, &l.message])
                        .await?;
                }
                tx.commit().await
            })
        })
    }

    fn node_log(&self, run_id: &str, node: &str) -> Result<Vec<LogLine>, StateError> {
        let (run_id, node) = (run_id.to_string(), node.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.query(
                "SELECT at, level, message FROM node_logs WHERE run_id = $1 AND node = $2 ORDER BY seq",
                &[&run_id, &node],
            ))
            .map(|rows| {
                rows.iter()
                    .map(|r| LogLine {
                        at: r.get(0),
                        level: r.get(1),
                        message: r.get(2),
                    })
                    .collect()
            })
        })
    }

    fn set_stale_inputs(
        &self,
        run_id: &str,
        node: &str,
        inputs: &[String],
    ) -> Result<(), StateError> {
        let (run_id, node, inputs) = (run_id.to_string(), node.to_string(), inputs.join(","));
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO stale_inputs (run_id, node, inputs) VALUES ($1, $2, $3)
                 ON CONFLICT (run_id, node) DO UPDATE SET inputs = excluded.inputs",
                &[&run_id, &node, &inputs],
            ))
            .map(|_| ())
        })
    }

    fn stale_inputs_of_run(
        &self,
        run_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StateError> {
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            rt.block_on(c.query(
                "SELECT node, inputs FROM stale_inputs WHERE run_id = $1",
                &[&run_id],
            ))
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let inputs: String = r.get(1);
                        (
                            r.get::<_, String>(0),
                            inputs.split(',').map(str::to_string).collect(),
                        )
                    })
                    .collect()
            })
        })
    }
}
