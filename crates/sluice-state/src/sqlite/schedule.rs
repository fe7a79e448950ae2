//! [`Schedules`] on SQLite (table `schedule_ticks`; the marks are read from `node_runs`).

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::StateError;
use crate::schedule::{RunMark, Schedules};

impl Schedules for SqliteStore {
    fn schedule_tick(&self, node: &str) -> Result<Option<String>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT last_tick FROM schedule_ticks WHERE node = ?1",
                [node],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
    }

    fn set_schedule_tick(&self, node: &str, tick: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO schedule_ticks (node, last_tick) VALUES (?1, ?2)
                 ON CONFLICT (node) DO UPDATE SET last_tick = excluded.last_tick",
                params![node, tick],
            )
            .map(|_| ())
        })
    }

    fn schedule_ticks(&self) -> Result<Vec<(String, String)>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT node, last_tick FROM schedule_ticks ORDER BY node")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
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

impl SqliteStore {
    /// `(node, run_id, at)` rows as marks by node; of rows tied on a node's latest time, ordered by
    /// run id, the last (the greatest run id) is kept. The statements are plain SQL (SQLite and
    /// PostgreSQL alike), not SQLite's bare columns beside `max()`; each is an ordered index scan
    /// (`node_runs_by_node`, `node_runs_by_node_start`) plus one index lookup per node.
    fn marks(&self, sql: &str) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    RunMark {
                        run_id: r.get(1)?,
                        at: r.get(2)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }
}
