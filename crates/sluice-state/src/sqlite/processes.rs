//! [`RunProcesses`] on SQLite (table `run_processes`, with `runs`, `leases`, `lease_owners` and
//! `node_runs` for abandoning).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::StateError;
use crate::processes::{RunProcesses, RunningRun};

impl RunProcesses for SqliteStore {
    fn set_run_plan(&self, run_id: &str, nodes: &[(String, String)]) -> Result<(), StateError> {
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

    fn heartbeat_run(&self, run_id: &str, now_ms: i64) -> Result<bool, StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE run_processes SET heartbeat_ms = ?2 WHERE run_id = ?1
                 AND EXISTS (SELECT 1 FROM runs WHERE run_id = ?1 AND status <> 'abandoned')",
                params![run_id, now_ms],
            )
            .map(|n| n == 1)
        })
    }

    fn running_runs(&self, only: Option<&str>) -> Result<Vec<RunningRun>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.run_id, r.started_at, p.process, p.start_ticks, p.heartbeat_ms, o.process
                 FROM runs r LEFT JOIN run_processes p ON p.run_id = r.run_id
                 LEFT JOIN lease_owners o ON o.holder = r.run_id
                 WHERE r.status = 'running' AND r.finished_at IS NULL AND (?1 IS NULL OR r.run_id = ?1)",
            )?;
            let rows = stmt.query_map([only], |r| {
                Ok(RunningRun {
                    run_id: r.get(0)?,
                    started_at: r.get(1)?,
                    process: r.get(2)?,
                    start_ticks: r.get(3)?,
                    heartbeat_ms: r.get(4)?,
                    lease_process: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn mark_abandoned(&self, run_id: &str, reason: &str, at: &str) -> Result<bool, StateError> {
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
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
            {
                let mut insert = tx.prepare(
                    "INSERT INTO node_runs (run_id, node, kind, status, attempts, started_at, finished_at,
                     duration_ms, error) VALUES (?1, ?2, ?3, 'abandoned', ?4, ?5, ?5, 0, ?6)
                     ON CONFLICT (run_id, node) DO NOTHING",
                )?;
                for (node, kind) in &nodes {
                    let (attempts, error) = if leased.contains(node) {
                        (1, format!("was running when its run was abandoned: {reason}"))
                    } else {
                        (0, format!("did not start: its run was abandoned: {reason}"))
                    };
                    insert.execute(params![run_id, node, kind, attempts, at, error])?;
                }
            }
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

    fn run_error(&self, run_id: &str) -> Result<Option<String>, StateError> {
        self.with(|c| {
            c.query_row("SELECT error FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
        })
    }

    fn unfinished_runs(&self, started_after: &str) -> Result<BTreeSet<String>, StateError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT run_id FROM runs WHERE finished_at IS NULL AND started_at > ?1")?;
            let rows = stmt.query_map([started_after], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }
}
