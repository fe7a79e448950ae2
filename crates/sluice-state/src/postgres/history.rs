//! [`RunHistory`], [`RunProcesses`] and [`Schedules`] on PostgreSQL: the statements of
//! `sqlite/runs.rs`, `sqlite/processes.rs` and `sqlite/schedule.rs` with `$n` parameters, ordering
//! by the `seq` column where SQLite orders by `rowid`.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Row;

use super::PostgresStore;
use crate::StateError;
use crate::processes::{RunProcesses, RunningRun};
use crate::runs::{CheckRecord, NodeRecord, RunHistory, RunProcess, RunRecord};
use crate::schedule::{RunMark, Schedules};

const RUN_COLUMNS: &str = "run_id, command, selection, status, started_at, finished_at, nodes_ok, \
     nodes_failed, nodes_skipped, checks_passed, checks_warned, checks_failed";
const NODE_COLUMNS: &str = "run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined, \
     started_at, finished_at, duration_ms, error, version";
const CHECK_COLUMNS: &str = "run_id, check_name, model, kind, column_name, severity, status, \
     failing_rows, sample, message, checked_at";

fn run_from_row(r: &Row) -> RunRecord {
    let count = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0);
    RunRecord {
        run_id: r.get(0),
        command: r.get(1),
        selection: r.get(2),
        status: r.get(3),
        started_at: r.get(4),
        finished_at: r.get(5),
        nodes_ok: count(6),
        nodes_failed: count(7),
        nodes_skipped: count(8),
        checks_passed: count(9),
        checks_warned: count(10),
        checks_failed: count(11),
    }
}

fn node_from_row(r: &Row) -> NodeRecord {
    NodeRecord {
        run_id: r.get(0),
        node: r.get(1),
        kind: r.get(2),
        status: r.get(3),
        attempts: r.get(4),
        rows_in: r.get(5),
        rows_out: r.get(6),
        rows_quarantined: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
        duration_ms: r.get(10),
        error: r.get(11),
        version: r.get(12),
    }
}

fn check_from_row(r: &Row) -> CheckRecord {
    let sample: Option<String> = r.get(8);
    CheckRecord {
        run_id: r.get(0),
        check_name: r.get(1),
        model: r.get(2),
        kind: r.get(3),
        column_name: r.get(4),
        severity: r.get(5),
        status: r.get(6),
        failing_rows: r.get(7),
        sample: sample
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null),
        message: r.get(9),
        checked_at: r.get(10),
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    fn nodes(&self, sql: String, arg: Option<String>) -> Result<Vec<NodeRecord>, StateError> {
        self.exec(move |c, rt| {
            let rows = match &arg {
                Some(a) => rt.block_on(c.query(&sql, &[a]))?,
                None => rt.block_on(c.query(&sql, &[]))?,
            };
            Ok(rows.iter().map(node_from_row).collect())
        })
    }

    fn checks(&self, sql: String, arg: Option<String>) -> Result<Vec<CheckRecord>, StateError> {
        self.exec(move |c, rt| {
            let rows = match &arg {
                Some(a) => rt.block_on(c.query(&sql, &[a]))?,
                None => rt.block_on(c.query(&sql, &[]))?,
            };
            Ok(rows.iter().map(check_from_row).collect())
        })
    }

    fn marks(&self, sql: &'static str) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(sql, &[]))?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        RunMark {
                            run_id: r.get(1),
                            at: r.get(2),
                        },
                    )
                })
                .collect())
        })
    }
}

impl RunHistory for PostgresStore {
    fn start_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        started_at: &str,
        process: &RunProcess,
    ) -> Result<(), StateError> {
        let (run_id, command, selection, started_at, p) = (
            run_id.to_string(),
            command.to_string(),
            selection.to_string(),
            started_at.to_string(),
            process.clone(),
        );
        let id = run_id.clone();
        let started = self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                // A new run, or a queued one (`RunQueue`) starting: never another run's row.
                let n = tx
                    .execute(
                        "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES ($1, $2, $3, 'running', $4)
                         ON CONFLICT (run_id) DO UPDATE SET status = 'running', started_at = excluded.started_at
                         WHERE runs.status = 'queued'",
                        &[&run_id, &command, &selection, &started_at],
                    )
                    .await?;
                if n != 1 {
                    return Ok(false);
                }
                tx.execute("DELETE FROM run_queue WHERE run_id = $1", &[&run_id])
                    .await?;
                tx.execute(
                    "INSERT INTO run_processes (run_id, process, start_ticks, heartbeat_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id) DO UPDATE SET process = excluded.process, start_ticks = excluded.start_ticks,
                     heartbeat_ms = excluded.heartbeat_ms, plan = NULL",
                    &[&run_id, &p.process, &p.start_ticks, &p.heartbeat_ms],
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            })
        })?;
        if started {
            Ok(())
        } else {
            Err(StateError::NotQueued { run_id: id })
        }
    }

    fn finish_run(&self, r: &RunRecord) -> Result<(), StateError> {
        let r = r.clone();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE runs SET status = $2, finished_at = $3, nodes_ok = $4, nodes_failed = $5, nodes_skipped = $6,
                 checks_passed = $7, checks_warned = $8, checks_failed = $9 WHERE run_id = $1",
                &[&r.run_id, &r.status, &r.finished_at, &r.nodes_ok, &r.nodes_failed, &r.nodes_skipped, &r.checks_passed, &r.checks_warned, &r.checks_failed],
            ))
            .map(|_| ())
        })
    }

    fn record_node(&self, n: &NodeRecord) -> Result<(), StateError> {
        let n = n.clone();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO node_runs (run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined,
                 started_at, finished_at, duration_ms, error, version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
                 ON CONFLICT (run_id, node) DO UPDATE SET kind = excluded.kind, status = excluded.status,
                 attempts = excluded.attempts, rows_in = excluded.rows_in, rows_out = excluded.rows_out,
                 rows_quarantined = excluded.rows_quarantined, started_at = excluded.started_at,
                 finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, error = excluded.error,
                 version = excluded.version",
                &[&n.run_id, &n.node, &n.kind, &n.status, &n.attempts, &n.rows_in, &n.rows_out, &n.rows_quarantined, &n.started_at, &n.finished_at, &n.duration_ms, &n.error, &n.version],
            ))
            .map(|_| ())
        })
    }

    fn record_check(&self, r: &CheckRecord) -> Result<(), StateError> {
        let r = r.clone();
        let sample = r.sample.to_string();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO check_results (run_id, check_name, model, kind, column_name, severity, status,
                 failing_rows, sample, message, checked_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
                 ON CONFLICT (run_id, check_name) DO UPDATE SET model = excluded.model, kind = excluded.kind,
                 column_name = excluded.column_name, severity = excluded.severity, status = excluded.status,
                 failing_rows = excluded.failing_rows, sample = excluded.sample, message = excluded.message,
                 checked_at = excluded.checked_at",
                &[&r.run_id, &r.check_name, &r.model, &r.kind, &r.column_name, &r.severity, &r.status, &r.failing_rows, &sample, &r.message, &r.checked_at],
            ))
            .map(|_| ())
        })
    }

    fn set_watermark(
        &self,
        node: &str,
        value: &serde_json::Value,
        run_id: &str,
        at: &str,
    ) -> Result<(), StateError> {
        let (node, value, run_id, at) = (
            node.to_string(),
            value.to_string(),
            run_id.to_string(),
            at.to_string(),
        );
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO watermarks (node, value, run_id, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (node) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, updated_at = excluded.updated_at",
                &[&node, &value, &run_id, &at],
            ))
            .map(|_| ())
        })
    }

    fn watermark(&self, node: &str) -> Result<Option<serde_json::Value>, StateError> {
        let node = node.to_string();
        self.exec(move |c, rt| {
            let row =
                rt.block_on(c.query_opt("SELECT value FROM watermarks WHERE node = $1", &[&node]))?;
            Ok(row.and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()))
        })
    }

    fn runs(&self, n: usize) -> Result<Vec<RunRecord>, StateError> {
        self.exec(move |c, rt| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, seq DESC LIMIT $1"
            );
            let rows = rt.block_on(c.query(&sql, &[&limit(n)]))?;
            Ok(rows.iter().map(run_from_row).collect())
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError> {
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
            let row = rt.block_on(c.query_opt(&sql, &[&run_id]))?;
            Ok(row.as_ref().map(run_from_row))
        })
    }

    fn nodes_of_run(&self, run_id: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.nodes(
            format!(
                "SELECT {NODE_COLUMNS} FROM node_runs WHERE run_id = $1 ORDER BY started_at, node"
            ),
            Some(run_id.to_string()),
        )
    }

    fn latest_nodes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.nodes(
            format!("SELECT {NODE_COLUMNS} FROM node_runs n WHERE finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node) ORDER BY node"),
            None,
        )
    }

    fn latest_successes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.nodes(
            format!("SELECT {NODE_COLUMNS} FROM node_runs n WHERE status = 'success' AND finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node AND m.status = 'success') ORDER BY node"),
            None,
        )
    }

    fn node_history(&self, node: &str, n: usize) -> Result<Vec<NodeRecord>, StateError> {
        let mut v = self.nodes(
            format!(
                "SELECT {NODE_COLUMNS} FROM node_runs WHERE node = $1 ORDER BY finished_at DESC"
            ),
            Some(node.to_string()),
        )?;
        v.truncate(n);
        Ok(v)
    }

    fn checks_of_run(&self, run_id: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.checks(
            format!("SELECT {CHECK_COLUMNS} FROM check_results WHERE run_id = $1 ORDER BY model, check_name"),
            Some(run_id.to_string()),
        )
    }

    fn latest_checks(&self) -> Result<Vec<CheckRecord>, StateError> {
        self.checks(
            format!("SELECT {CHECK_COLUMNS} FROM check_results c WHERE checked_at = (SELECT max(checked_at) FROM check_results d WHERE d.check_name = c.check_name) ORDER BY model, check_name"),
            None,
        )
    }
}

impl Schedules for PostgresStore {
    fn schedule_tick(&self, node: &str) -> Result<Option<String>, StateError> {
        let node = node.to_string();
        self.exec(move |c, rt| {
            let row = rt.block_on(c.query_opt(
                "SELECT last_tick FROM schedule_ticks WHERE node = $1",
                &[&node],
            ))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_schedule_tick(&self, node: &str, tick: &str) -> Result<(), StateError> {
        let (node, tick) = (node.to_string(), tick.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO schedule_ticks (node, last_tick) VALUES ($1, $2)
                 ON CONFLICT (node) DO UPDATE SET last_tick = excluded.last_tick",
                &[&node, &tick],
            ))
            .map(|_| ())
        })
    }

    fn schedule_ticks(&self) -> Result<Vec<(String, String)>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT node, last_tick FROM schedule_ticks ORDER BY node",
                &[],
            ))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn latest_data_changes(&self) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.marks(
            "SELECT n.node, n.run_id, n.finished_at FROM node_runs n
             JOIN (SELECT node, max(finished_at) AS latest FROM node_runs
                   WHERE status = 'success' AND rows_out > 0 GROUP BY node) m
               ON m.node = n.node AND m.latest = n.finished_at
             WHERE n.status = 'success' AND n.rows_out > 0 ORDER BY n.node, n.run_id",
        )
    }

    fn latest_attempts(&self) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.marks(
            "SELECT n.node, n.run_id, n.started_at FROM node_runs n
             JOIN (SELECT node, max(started_at) AS latest FROM node_runs
                   WHERE status <> 'abandoned' GROUP BY node) m
               ON m.node = n.node AND m.latest = n.started_at
             WHERE n.status <> 'abandoned' ORDER BY n.node, n.run_id",
        )
    }
}

impl RunProcesses for PostgresStore {
    fn set_run_plan(&self, run_id: &str, nodes: &[(String, String)]) -> Result<(), StateError> {
        let plan = nodes
            .iter()
            .map(|(n, k)| format!("{n}\t{k}"))
            .collect::<Vec<_>>()
            .join("\n");
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE run_processes SET plan = $2 WHERE run_id = $1",
                &[&run_id, &plan],
            ))
            .map(|_| ())
        })
    }

    fn heartbeat_run(&self, run_id: &str, now_ms: i64) -> Result<bool, StateError> {
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE run_processes SET heartbeat_ms = $2 WHERE run_id = $1
                 AND EXISTS (SELECT 1 FROM runs WHERE run_id = $1 AND status <> 'abandoned')",
                &[&run_id, &now_ms],
            ))
            .map(|n| n == 1)
        })
    }

    fn running_runs(&self, only: Option<&str>) -> Result<Vec<RunningRun>, StateError> {
        let only = only.map(str::to_string);
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT r.run_id, r.started_at, p.process, p.start_ticks, p.heartbeat_ms, o.process
                 FROM runs r LEFT JOIN run_processes p ON p.run_id = r.run_id
                 LEFT JOIN lease_owners o ON o.holder = r.run_id
                 WHERE r.status = 'running' AND r.finished_at IS NULL AND ($1::TEXT IS NULL OR r.run_id = $1)",
                &[&only],
            ))?;
            Ok(rows
                .iter()
                .map(|r| RunningRun {
                    run_id: r.get(0),
                    started_at: r.get(1),
                    process: r.get(2),
                    start_ticks: r.get(3),
                    heartbeat_ms: r.get(4),
                    lease_process: r.get(5),
                })
                .collect())
        })
    }

    fn mark_abandoned(&self, run_id: &str, reason: &str, at: &str) -> Result<bool, StateError> {
        let (run_id, reason, at) = (run_id.to_string(), reason.to_string(), at.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                // The update locks the run's row: a second process abandoning it waits, then
                // finds it no longer running.
                let changed = tx
                    .execute(
                        "UPDATE runs SET status = 'abandoned', finished_at = $2, error = $3
                         WHERE run_id = $1 AND status = 'running' AND finished_at IS NULL",
                        &[&run_id, &at, &reason],
                    )
                    .await?;
                if changed == 0 {
                    return Ok(false);
                }
                let leased: BTreeSet<String> = tx
                    .query("SELECT node FROM leases WHERE holder = $1", &[&run_id])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let plan: Option<String> = tx
                    .query_opt("SELECT plan FROM run_processes WHERE run_id = $1", &[&run_id])
                    .await?
                    .and_then(|r| r.get(0));
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
                for (node, kind) in &nodes {
                    let (attempts, error) = if leased.contains(node) {
                        (1i64, format!("was running when its run was abandoned: {reason}"))
                    } else {
                        (0i64, format!("did not start: its run was abandoned: {reason}"))
                    };
                    tx.execute(
                        "INSERT INTO node_runs (run_id, node, kind, status, attempts, started_at, finished_at,
                         duration_ms, error) VALUES ($1, $2, $3, 'abandoned', $4, $5, $5, 0, $6)
                         ON CONFLICT (run_id, node) DO NOTHING",
                        &[&run_id, node, kind, &attempts, &at, &error],
                    )
                    .await?;
                }
                tx.execute(
                    "UPDATE runs SET
                     nodes_ok = (SELECT count(*) FROM node_runs WHERE run_id = $1 AND status = 'success'),
                     nodes_failed = (SELECT count(*) FROM node_runs WHERE run_id = $1 AND status = 'failed'),
                     nodes_skipped = (SELECT count(*) FROM node_runs WHERE run_id = $1
                                      AND status IN ('skipped', 'cancelled', 'abandoned')),
                     checks_passed = (SELECT count(*) FROM check_results WHERE run_id = $1 AND status = 'pass'),
                     checks_warned = (SELECT count(*) FROM check_results WHERE run_id = $1 AND status = 'warn'),
                     checks_failed = (SELECT count(*) FROM check_results WHERE run_id = $1 AND status = 'fail')
                     WHERE run_id = $1",
                    &[&run_id],
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            })
        })
    }

    fn run_error(&self, run_id: &str) -> Result<Option<String>, StateError> {
        let run_id = run_id.to_string();
        self.exec(move |c, rt| {
            let row =
                rt.block_on(c.query_opt("SELECT error FROM runs WHERE run_id = $1", &[&run_id]))?;
            Ok(row.and_then(|r| r.get(0)))
        })
    }

    fn unfinished_runs(&self, started_after: &str) -> Result<BTreeSet<String>, StateError> {
        let started_after = started_after.to_string();
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT run_id FROM runs WHERE finished_at IS NULL AND started_at > $1",
                &[&started_after],
            ))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}
