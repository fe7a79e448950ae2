//! [`RunHistory`] on SQLite (tables `runs`, `node_runs`, `check_results`, `watermarks`, and the
//! `run_processes` row written with a run's start). The statements are portable SQL (`ON CONFLICT`
//! upserts, correlated `max()`), except `runs`, which orders ties by SQLite's `rowid` where
//! PostgreSQL has the `seq` column.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::StateError;
use crate::runs::{CheckRecord, NodeRecord, RunHistory, RunProcess, RunRecord};

const RUN_COLUMNS: &str = "run_id, command, selection, status, started_at, finished_at, nodes_ok, \
     nodes_failed, nodes_skipped, checks_passed, checks_warned, checks_failed";

impl RunHistory for SqliteStore {
    fn start_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        started_at: &str,
        process: &RunProcess,
    ) -> Result<(), StateError> {
        let started = self.with(|c| {
            let tx = c.unchecked_transaction()?;
            // A new run, or a queued one (`RunQueue`) starting: never another run's row.
            let n = tx.execute(
                "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)
                 ON CONFLICT (run_id) DO UPDATE SET status = 'running', started_at = excluded.started_at
                 WHERE runs.status = 'queued'",
                params![run_id, command, selection, started_at],
            )?;
            if n != 1 {
                return Ok(false);
            }
            tx.execute("DELETE FROM run_queue WHERE run_id = ?1", params![run_id])?;
            tx.execute(
                "INSERT INTO run_processes (run_id, process, start_ticks, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO UPDATE SET process = excluded.process, start_ticks = excluded.start_ticks,
                 heartbeat_ms = excluded.heartbeat_ms, plan = NULL",
                params![run_id, process.process, process.start_ticks, process.heartbeat_ms],
            )?;
            tx.commit()?;
            Ok(true)
        })?;
        if started {
            Ok(())
        } else {
            Err(StateError::NotQueued {
                run_id: run_id.to_string(),
            })
        }
    }

    fn finish_run(&self, r: &RunRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, nodes_ok = ?4, nodes_failed = ?5, nodes_skipped = ?6,
                 checks_passed = ?7, checks_warned = ?8, checks_failed = ?9 WHERE run_id = ?1",
                params![r.run_id, r.status, r.finished_at, r.nodes_ok, r.nodes_failed, r.nodes_skipped, r.checks_passed, r.checks_warned, r.checks_failed],
            )
            .map(|_| ())
        })
    }

    fn record_node(&self, n: &NodeRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO node_runs (run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined,
                 started_at, finished_at, duration_ms, error, version) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)
                 ON CONFLICT (run_id, node) DO UPDATE SET kind = excluded.kind, status = excluded.status,
                 attempts = excluded.attempts, rows_in = excluded.rows_in, rows_out = excluded.rows_out,
                 rows_quarantined = excluded.rows_quarantined, started_at = excluded.started_at,
                 finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, error = excluded.error,
                 version = excluded.version",
                params![n.run_id, n.node, n.kind, n.status, n.attempts, n.rows_in, n.rows_out, n.rows_quarantined, n.started_at, n.finished_at, n.duration_ms, n.error, n.version],
            )
            .map(|_| ())
        })
    }

    fn record_check(&self, r: &CheckRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO check_results (run_id, check_name, model, kind, column_name, severity, status,
                 failing_rows, sample, message, checked_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
                 ON CONFLICT (run_id, check_name) DO UPDATE SET model = excluded.model, kind = excluded.kind,
                 column_name = excluded.column_name, severity = excluded.severity, status = excluded.status,
                 failing_rows = excluded.failing_rows, sample = excluded.sample, message = excluded.message,
                 checked_at = excluded.checked_at",
                params![r.run_id, r.check_name, r.model, r.kind, r.column_name, r.severity, r.status, r.failing_rows, r.sample.to_string(), r.message, r.checked_at],
            )
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
        self.with(|c| {
            c.execute(
                "INSERT INTO watermarks (node, value, run_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, updated_at = excluded.updated_at",
                params![node, value.to_string(), run_id, at],
            )
            .map(|_| ())
        })
    }

    fn watermark(&self, node: &str) -> Result<Option<serde_json::Value>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM watermarks WHERE node = ?1",
                [node],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .map(|v| v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], run_from_row)?;
            rows.collect()
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                [run_id],
                run_from_row,
            )
            .optional()
        })
    }

    fn nodes_of_run(&self, run_id: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query("WHERE run_id = ?1 ORDER BY started_at, node", run_id)
    }

    fn latest_nodes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query(
            "n WHERE finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node) AND ?1 = ?1 ORDER BY node",
            "",
        )
    }

    fn latest_successes(&self) -> Result<Vec<NodeRecord>, StateError> {
        self.node_query(
            "n WHERE status = 'success' AND finished_at = (SELECT max(finished_at) FROM node_runs m WHERE m.node = n.node AND m.status = 'success') AND ?1 = ?1 ORDER BY node",
            "",
        )
    }

    fn node_history(&self, node: &str, limit: usize) -> Result<Vec<NodeRecord>, StateError> {
        let mut v = self.node_query("WHERE node = ?1 ORDER BY finished_at DESC", node)?;
        v.truncate(limit);
        Ok(v)
    }

    fn checks_of_run(&self, run_id: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.check_query("WHERE run_id = ?1 ORDER BY model, check_name", run_id)
    }

    fn latest_checks(&self) -> Result<Vec<CheckRecord>, StateError> {
        self.check_query(
            "c WHERE checked_at = (SELECT max(checked_at) FROM check_results d WHERE d.check_name = c.check_name) AND ?1 = ?1 ORDER BY model, check_name",
            "",
        )
    }
}

impl SqliteStore {
    fn node_query(&self, tail: &str, arg: &str) -> Result<Vec<NodeRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT run_id, node, kind, status, attempts, rows_in, rows_out, rows_quarantined, started_at, finished_at,
                 duration_ms, error, version FROM node_runs {tail}"
            ))?;
            let rows = stmt.query_map([arg], |r| {
                Ok(NodeRecord {
                    run_id: r.get(0)?,
                    node: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    rows_in: r.get(5)?,
                    rows_out: r.get(6)?,
                    rows_quarantined: r.get(7)?,
                    started_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    duration_ms: r.get(10)?,
                    error: r.get(11)?,
                    version: r.get(12)?,
                })
            })?;
            rows.collect()
        })
    }

    fn check_query(&self, tail: &str, arg: &str) -> Result<Vec<CheckRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT run_id, check_name, model, kind, column_name, severity, status, failing_rows, sample, message, checked_at
                 FROM check_results {tail}"
            ))?;
            let rows = stmt.query_map([arg], |r| {
                let sample: Option<String> = r.get(8)?;
                Ok(CheckRecord {
                    run_id: r.get(0)?,
                    check_name: r.get(1)?,
                    model: r.get(2)?,
                    kind: r.get(3)?,
                    column_name: r.get(4)?,
                    severity: r.get(5)?,
                    status: r.get(6)?,
                    failing_rows: r.get(7)?,
                    sample: sample
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or(serde_json::Value::Null),
                    message: r.get(9)?,
                    checked_at: r.get(10)?,
                })
            })?;
            rows.collect()
        })
    }
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.get(0)?,
        command: r.get(1)?,
        selection: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        nodes_ok: r.get(6)?,
        nodes_failed: r.get(7)?,
        nodes_skipped: r.get(8)?,
        checks_passed: r.get(9)?,
        checks_warned: r.get(10)?,
        checks_failed: r.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(run: &str, name: &str, status: &str, at: &str) -> NodeRecord {
        NodeRecord {
            run_id: run.into(),
            node: name.into(),
            kind: "model".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: Some(3),
            rows_quarantined: None,
            started_at: at.into(),
            finished_at: at.into(),
            duration_ms: 5,
            error: None,
            version: Some(1),
        }
    }

    fn process() -> RunProcess {
        RunProcess {
            process: "boot:ns:1".into(),
            start_ticks: Some(7),
            heartbeat_ms: 1,
        }
    }

    #[test]
    fn records_and_reads_back_through_the_trait() {
        let store = SqliteStore::in_memory().unwrap();
        let s: &dyn RunHistory = &store;
        s.start_run("r1", "run", "", "2026-01-01T00:00:00Z", &process())
            .unwrap();
        s.record_node(&node("r1", "a", "success", "2026-01-01T00:00:01Z"))
            .unwrap();
        s.start_run("r2", "run", "a", "2026-01-02T00:00:00Z", &process())
            .unwrap();
        s.record_node(&node("r2", "a", "failed", "2026-01-02T00:00:01Z"))
            .unwrap();
        assert_eq!(s.runs(10).unwrap()[0].run_id, "r2");
        assert_eq!(s.run("r1").unwrap().unwrap().status, "running");
        assert_eq!(s.latest_nodes().unwrap()[0].status, "failed");
        assert_eq!(s.latest_successes().unwrap()[0].run_id, "r1");
        assert_eq!(s.node_history("a", 1).unwrap().len(), 1);
        s.set_watermark("src.t", &serde_json::json!("2026-01-05"), "r1", "now")
            .unwrap();
        s.set_watermark("src.t", &serde_json::json!("2026-01-06"), "r2", "now")
            .unwrap();
        assert_eq!(
            s.watermark("src.t").unwrap(),
            Some(serde_json::json!("2026-01-06"))
        );
        let processes: i64 = store
            .with(|c| c.query_row("SELECT count(*) FROM run_processes", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(processes, 2, "each start records its process");
    }

    #[test]
    fn a_run_that_already_exists_records_nothing() {
        let s = SqliteStore::in_memory().unwrap();
        s.start_run("r1", "run", "", "t", &process()).unwrap();
        let other = RunProcess {
            process: "other".into(),
            ..process()
        };
        assert!(s.start_run("r1", "run", "", "t", &other).is_err());
        let recorded: String = s
            .with(|c| {
                c.query_row(
                    "SELECT process FROM run_processes WHERE run_id = 'r1'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(recorded, "boot:ns:1", "the transaction rolled back");
    }

    #[test]
    fn checks_keep_their_sample() {
        let s = SqliteStore::in_memory().unwrap();
        let check = CheckRecord {
            run_id: "r".into(),
            check_name: "unique_id".into(),
            model: "m".into(),
            kind: "unique".into(),
            column_name: Some("id".into()),
            severity: "error".into(),
            status: "fail".into(),
            failing_rows: 2,
            sample: serde_json::json!([{"id": 1}]),
            message: None,
            checked_at: "t".into(),
        };
        s.record_check(&check).unwrap();
        assert_eq!(s.checks_of_run("r").unwrap(), std::slice::from_ref(&check));
        assert_eq!(s.latest_checks().unwrap(), [check]);
    }
}
